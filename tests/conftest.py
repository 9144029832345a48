"""Shared fixtures: a migrated database on SQLite and PostgreSQL, settings, the app with its lifespan, a client."""

from __future__ import annotations

import asyncio
import compileall
import os
import shutil
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.applications import Starlette

from idp.app import create_app
from idp.clock import FrozenClock
from idp.config import Settings
from idp.container import Idp
from idp.store.migrate import upgrade
from idp.store.models import Base

PG_SERVER = os.environ.get("IDP_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
REQUIRE_PG = os.environ.get("IDP_TEST_REQUIRE_POSTGRES", "") not in ("", "0", "false")
# Every table the models know, so a new table is emptied between tests without being listed here.
TABLES = sorted(Base.metadata.tables)
# Cheap argon2 for tests that are not about the hashing cost itself; the cost tests set their own.
FAST_ARGON2 = {"argon2_memory_kib": 1024, "argon2_time_cost": 1}
TEST_CLIENT_IP = "198.51.100.7"


def pytest_configure(config: pytest.Config) -> None:
    # Many tests start `idp` as a process (the CLI, uvicorn replicas). Where PYTHONDONTWRITEBYTECODE is set (as on
    # the CI machines), each of them would compile every module of idp again: compile them once, here.
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        compileall.compile_dir(Path(create_app.__code__.co_filename).parent, quiet=1)


def run_sync(coro_fn: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run a coroutine to completion in a thread of its own, whatever loop the caller is in."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = asyncio.run(coro_fn())
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")


def pg_url(database: str) -> str:
    return PG_SERVER.rsplit("/", 1)[0] + "/" + database


def _pg_available() -> str | None:
    async def probe() -> None:
        engine = create_async_engine(PG_SERVER)
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        finally:
            await engine.dispose()

    try:
        run_sync(probe)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def recreate_pg_database(name: str) -> str:
    async def go() -> None:
        engine = create_async_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            await engine.dispose()

    run_sync(go)
    return pg_url(name)


def drop_pg_database(name: str) -> None:
    async def go() -> None:
        engine = create_async_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            await engine.dispose()

    run_sync(go)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "idp.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    problem = _pg_available()
    if problem:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL is required (IDP_TEST_REQUIRE_POSTGRES) but not reachable: {problem}")
        pytest.skip(f"PostgreSQL not reachable at {PG_SERVER}: {problem}")
    # One database per test process, so parallel runs (xdist workers, two checkouts) never share rows.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"idp_test_{worker}_{os.getpid()}"
    url = recreate_pg_database(name)
    upgrade(url)
    yield url
    drop_pg_database(name)


# Children before parents (the models' foreign keys), then every sequence back to 1, as TRUNCATE ... RESTART
# IDENTITY would. DELETE, not TRUNCATE: on tables this small TRUNCATE takes a quarter of a second (new files for
# every table), DELETE a few milliseconds, and the suite empties the database before each of ~1,500 tests.
_EMPTY_PG = " ".join(
    [
        "BEGIN;",
        *(f"DELETE FROM {table.name};" for table in reversed(Base.metadata.sorted_tables)),
        "DO $$ DECLARE s record; BEGIN",
        "FOR s IN SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema() LOOP",
        "EXECUTE format('ALTER SEQUENCE %I RESTART', s.sequencename); END LOOP; END $$;",
        "COMMIT;",
    ]
)


def truncate_pg(url: str) -> None:
    """Empty every table of the models and restart their ids (see _EMPTY_PG)."""

    async def go() -> None:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                raw = await conn.get_raw_connection()
                # asyncpg's simple query protocol runs the several statements in one round trip.
                await raw.driver_connection.execute(_EMPTY_PG)  # type: ignore[union-attr]
        finally:
            await engine.dispose()

    run_sync(go)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database of each kind."""
    if request.param == "sqlite":
        target = tmp_path / "idp.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), target)
        return f"sqlite+aiosqlite:///{target}"
    url: str = request.getfixturevalue("postgres_database")
    truncate_pg(url)
    return url


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def make_settings(database_url: str) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "issuer": "http://testserver",
            "secret_key": "s" * 40,
            "encryption_key": "e" * 40,
            **FAST_ARGON2,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


class Running:
    """An app whose lifespan has started, with a way to make clients for it."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    @property
    def idp(self) -> Idp:
        return self.app.state.idp  # type: ignore[no-any-return]

    def client(self, ip: str = TEST_CLIENT_IP, base_url: str = "http://testserver") -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=(ip, 40000))
        return httpx.AsyncClient(transport=transport, base_url=base_url)


@pytest.fixture
async def start_app(clock: FrozenClock) -> AsyncIterator[Callable[..., Coroutine[Any, Any, Running]]]:
    """Start apps (lifespan included) for given settings; all are stopped at the end of the test."""
    stack: list[Any] = []

    async def start(settings: Settings) -> Running:
        app = create_app(settings, clock=clock)
        context = app.router.lifespan_context(app)
        await context.__aenter__()
        stack.append(context)
        return Running(app)

    yield start
    for context in reversed(stack):
        await context.__aexit__(None, None, None)


@pytest.fixture
async def running(start_app: Callable[..., Coroutine[Any, Any, Running]], settings: Settings) -> Running:
    return await start_app(settings)


@pytest.fixture
async def client(running: Running) -> AsyncIterator[httpx.AsyncClient]:
    async with running.client() as c:
        yield c
