"""Alembic migrations from an empty database, up and down, on SQLite and PostgreSQL; indexed lookups; shared keys."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from idp.clock import FrozenClock
from idp.config import Settings
from idp.services.instance import load_instance_keys
from idp.store.db import Database
from idp.store.migrate import downgrade, upgrade
from idp.store.models import Base
from tests.conftest import FAST_ARGON2, Running, drop_pg_database, recreate_pg_database, run_sync
from tests.support.pages import PASSWORD, make_user, submit_login

StartApp = Callable[[Settings], Coroutine[Any, Any, Running]]
EXPECTED_TABLES = set(Base.metadata.tables)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with nothing in it: not even Alembic's version table."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    request.getfixturevalue("postgres_database")  # skips (or fails) like every PostgreSQL test when it is absent
    # Per process, and dropped afterwards: other test runs may share the server.
    name = f"idp_test_migrations_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"
    yield recreate_pg_database(name)
    drop_pg_database(name)


def describe(url: str) -> dict[str, Any]:
    """Tables, their columns, indexes and unique constraints, and the Alembic revision, as plain data."""

    def read(conn: Connection) -> dict[str, Any]:
        inspector = inspect(conn)
        schema: dict[str, Any] = {}
        for table in inspector.get_table_names():
            schema[table] = {
                "columns": sorted(column["name"] for column in inspector.get_columns(table)),
                "indexes": sorted((i["name"], tuple(i["column_names"])) for i in inspector.get_indexes(table)),
                "unique": sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)),
                "pk": tuple(inspector.get_pk_constraint(table)["constrained_columns"]),
            }
        version = None
        if "alembic_version" in schema:
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        return {"tables": schema, "version": version}

    async def go() -> dict[str, Any]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(read)
        finally:
            await engine.dispose()

    return run_sync(go)  # type: ignore[no-any-return]


def assert_matches_the_models(schema: dict[str, Any]) -> None:
    tables = schema["tables"]
    assert set(tables) == EXPECTED_TABLES | {"alembic_version"}
    for name, table in Base.metadata.tables.items():
        found = tables[name]
        assert found["columns"] == sorted(column.name for column in table.columns), name
        assert found["pk"] == tuple(column.name for column in table.primary_key.columns), name
        for index in table.indexes:
            assert (index.name, tuple(column.name for column in index.columns)) in found["indexes"], index.name
        for constraint in table.constraints:
            if constraint.__class__.__name__ == "UniqueConstraint":
                columns = tuple(column.name for column in constraint.columns)  # type: ignore[attr-defined]
                assert columns in found["unique"], (name, columns)
        for column in table.columns:
            if column.unique:
                assert (column.name,) in found["unique"], (name, column.name)


def test_upgrade_from_empty_creates_every_table_and_index(empty_database: str) -> None:
    assert describe(empty_database)["tables"] == {}

    upgrade(empty_database)

    schema = describe(empty_database)
    assert_matches_the_models(schema)
    assert schema["version"] is not None


def test_downgrade_to_base_drops_everything_and_upgrade_works_again(empty_database: str) -> None:
    upgrade(empty_database)
    first = describe(empty_database)

    downgrade(empty_database, "base")
    after_downgrade = describe(empty_database)
    assert set(after_downgrade["tables"]) <= {"alembic_version"}
    assert after_downgrade["version"] is None

    upgrade(empty_database)
    assert describe(empty_database) == first


def test_each_revision_steps_down_and_up(empty_database: str) -> None:
    upgrade(empty_database)
    head = describe(empty_database)
    downgrade(empty_database, "-1")
    below = describe(empty_database)
    assert below["version"] != head["version"]
    # The head revision took something away on its way down: a table, or (adding columns) some columns.
    assert set(below["tables"]) <= set(head["tables"])
    assert below["tables"] != head["tables"]
    upgrade(empty_database)
    assert describe(empty_database) == head


def test_upgrading_twice_changes_nothing(empty_database: str) -> None:
    upgrade(empty_database)

    async def add_row() -> None:
        engine = create_async_engine(empty_database)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO instance_secrets (name, value, created_at) "
                        "VALUES ('probe', 'v', CURRENT_TIMESTAMP)"
                    )
                )
        finally:
            await engine.dispose()

    run_sync(add_row)
    before = describe(empty_database)

    upgrade(empty_database)

    assert describe(empty_database) == before

    async def read_row() -> str | None:
        engine = create_async_engine(empty_database)
        try:
            async with engine.connect() as conn:
                return (await conn.execute(text("SELECT value FROM instance_secrets WHERE name = 'probe'"))).scalar()
        finally:
            await engine.dispose()

    assert run_sync(read_row) == "v"


def test_replicas_migrating_postgresql_at_once_all_succeed(postgres_database: str) -> None:
    # Only PostgreSQL: a SQLite file is migrated by the one process that serves it.
    name = f"idp_test_migrations_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"
    empty_database = recreate_pg_database(name)
    # Separate processes, like replicas starting together (Alembic's context is per process, not per thread).
    script = "import sys; from idp.store.migrate import upgrade; upgrade(sys.argv[1])"
    processes = [
        subprocess.Popen([sys.executable, "-c", script, empty_database], stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    try:
        for process in processes:
            _, stderr = process.communicate(timeout=60)
            assert process.returncode == 0, stderr
        assert_matches_the_models(describe(empty_database))
    finally:
        drop_pg_database(name)


# --- the lookups a request makes use indexes (SQLite's planner, the stricter of the two on small tables) ---


def explain(path: Path, statement: str, parameters: Any) -> list[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("EXPLAIN QUERY PLAN " + statement, parameters).fetchall()
    return [row[3] for row in rows]


def full_scans(plan: list[str]) -> list[str]:
    # "SCAN t" reads the whole table; "SCAN t USING INDEX" reads a whole index: both grow with the data. "SCAN
    # CONSTANT ROW" is a SELECT without FROM (its EXISTS subqueries are planned as steps of their own).
    return [step for step in plan if step.startswith("SCAN ") and step != "SCAN CONSTANT ROW"]


async def test_sign_in_and_account_lookups_use_indexes(
    start_app: StartApp, tmp_path: Path, sqlite_template: Path
) -> None:
    path = tmp_path / "plan.db"
    shutil.copy(sqlite_template, path)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=f"sqlite+aiosqlite:///{path}",
        issuer="http://testserver",
        secret_key="s" * 40,
        encryption_key="e" * 40,
        **FAST_ARGON2,
    )
    running = await start_app(settings)
    for i in range(10):
        await make_user(running.idp, f"person{i}@example.com")
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, executemany: bool) -> None:
        if not executemany and statement.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE")):
            captured.append((statement, parameters))

    event.listen(running.idp.db.engine.sync_engine, "before_cursor_execute", capture)
    async with running.client() as client:
        assert (await submit_login(client, "person7@example.com", "wrong password")).status_code == 400
        assert (await submit_login(client, "person7@example.com", PASSWORD)).status_code == 303
        assert (await client.get("/account")).status_code == 200
    event.remove(running.idp.db.engine.sync_engine, "before_cursor_execute", capture)

    # No ANALYZE: on a handful of rows its statistics make a scan the cheaper plan, which says nothing about indexes.
    statements = {statement for statement, _ in captured}
    lookups = {
        "user by email_norm": "email_norm = ",
        "session by id_hash joined to its user": "login_sessions.id_hash = ",
        "rate-limit count by key and time": "count(*) AS count_1, min(ratelimit_hits.at)",
    }
    for name, marker in lookups.items():
        assert any(marker in statement for statement in statements), f"no {name} query was made"
    for statement, parameters in captured:
        plan = explain(path, statement, parameters)
        assert not full_scans(plan), (statement, plan)


@pytest.mark.parametrize(
    ("statement", "parameters"),
    [
        ("SELECT * FROM users WHERE email_norm = ?", ("a@example.com",)),
        (
            "SELECT * FROM login_sessions JOIN users ON users.id = login_sessions.user_id "
            "WHERE login_sessions.id_hash = ?",
            ("0" * 64,),
        ),
        (
            "SELECT key, count(*), min(at) FROM ratelimit_hits WHERE key IN (?, ?) AND at > ? GROUP BY key",
            ("login:acct:x", "login:addr:y", "2026-01-01 00:00:00"),
        ),
        ("DELETE FROM ratelimit_hits WHERE key = ?", ("login:acct:x",)),
        ("DELETE FROM login_sessions WHERE user_id = ?", ("u",)),
    ],
    ids=["user-by-email", "session-with-user", "ratelimit-count", "ratelimit-reset", "sessions-of-user"],
)
def test_named_lookups_search_an_index(sqlite_template: Path, tmp_path: Path, statement: str, parameters: Any) -> None:
    path = tmp_path / "plan.db"
    shutil.copy(sqlite_template, path)
    plan = explain(path, statement, parameters)
    assert not full_scans(plan), plan
    assert any(step.startswith("SEARCH ") for step in plan), plan


# --- instance secrets: generated once, shared by every replica ---


async def test_replicas_on_one_empty_database_share_generated_keys(
    start_app: StartApp, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(secret_key=None, encryption_key=None)
    first = await start_app(settings)
    second = await start_app(settings)

    assert first.idp.keys == second.idp.keys
    assert len(first.idp.keys.secret_key) >= 32
    assert len(first.idp.keys.encryption_key) >= 32
    assert first.idp.keys.secret_key != first.idp.keys.encryption_key
    # The CSRF token one replica puts in a form is accepted by the other.
    await make_user(first.idp)
    async with first.client() as client:
        form = await client.get("/login")
        token = form.text.split('name="csrf_token" value="')[1].split('"')[0]
        cookies = dict(client.cookies)
    async with second.client() as client:
        for name, value in cookies.items():
            client.cookies.set(name, value, domain="testserver.local")
        response = await client.post(
            "/login", data={"username": "person@example.com", "password": PASSWORD, "csrf_token": token}
        )
    assert response.status_code == 303


async def test_concurrent_first_starts_agree_on_the_keys(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(secret_key=None, encryption_key=None)
    databases = [Database(settings.database_url) for _ in range(4)]
    try:
        keys = await asyncio.gather(*(load_instance_keys(db, settings, FrozenClock()) for db in databases))
    finally:
        for db in databases:
            await db.dispose()
    assert len(set(keys)) == 1


async def test_configured_keys_win_over_generated_ones(
    start_app: StartApp, make_settings: Callable[..., Settings]
) -> None:
    generated = await start_app(make_settings(secret_key=None, encryption_key=None))
    configured = await start_app(make_settings(secret_key="c" * 40, encryption_key=None))
    assert configured.idp.keys.secret_key == "c" * 40
    assert configured.idp.keys.encryption_key == generated.idp.keys.encryption_key
