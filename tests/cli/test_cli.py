"""The `idp` console script (INTERFACE §2) run as a real process: migrate, users create, bad input, and serve."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from idp.config import Settings
from tests.conftest import FAST_ARGON2, Running, drop_pg_database, recreate_pg_database
from tests.support.pages import submit_login
from tests.support.ports import free_port

StartApp = Callable[[Settings], Coroutine[Any, Any, Running]]
IDP = [sys.executable, "-m", "idp.cli"]
PASSWORD = "a correct password from stdin"


def run_idp(
    *args: str, database_url: str, cwd: Path, stdin: str = "", extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.upper().startswith("IDP_")}
    env["IDP_DATABASE_URL"] = database_url
    env.update({f"IDP_{name.upper()}": str(value) for name, value in FAST_ARGON2.items()})
    env.update(extra_env or {})
    return subprocess.run(
        [*IDP, *args], input=stdin, capture_output=True, text=True, env=env, cwd=cwd, timeout=60, check=False
    )


async def arun_idp(
    *args: str, database_url: str, cwd: Path, stdin: str = "", extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`run_idp` from a test whose app runs in this event loop: waiting in a thread keeps the app's loop turning,
    so a transaction it has open (SQLite's one write lock) can finish instead of holding out the command."""
    return await asyncio.to_thread(run_idp, *args, database_url=database_url, cwd=cwd, stdin=stdin, extra_env=extra_env)


def assert_one_line_failure(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind, not yet migrated."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
        return
    request.getfixturevalue("postgres_database")  # skips (or fails) like every PostgreSQL test when it is absent
    # Per process, and dropped afterwards: other test runs may share the server.
    name = f"idp_test_cli_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"
    yield recreate_pg_database(name)
    drop_pg_database(name)


@pytest.fixture
def migrated(fresh_database: str, tmp_path: Path) -> str:
    result = run_idp("migrate", database_url=fresh_database, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return fresh_database


def test_migrate_creates_a_fresh_sqlite_database(tmp_path: Path) -> None:
    path = tmp_path / "new" / "idp.db"
    path.parent.mkdir()

    result = run_idp("migrate", database_url=f"sqlite+aiosqlite:///{path}", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"migrated": True}
    assert path.is_file()
    again = run_idp("migrate", database_url=f"sqlite+aiosqlite:///{path}", cwd=tmp_path)
    assert again.returncode == 0, again.stderr


def test_migrate_on_postgresql(migrated: str) -> None:
    assert migrated  # the fixture ran `idp migrate` and checked its exit status


async def test_created_user_is_printed_and_can_sign_in(migrated: str, tmp_path: Path, start_app: StartApp) -> None:
    result = await arun_idp(
        "users",
        "create",
        "--email",
        "Ada@Example.com",
        "--name",
        "Ada Lovelace",
        "--password-stdin",
        database_url=migrated,
        cwd=tmp_path,
        stdin=PASSWORD + "\n",
    )

    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert isinstance(printed["id"], str)
    assert printed["id"]
    assert printed["email"] == "Ada@Example.com"
    assert printed["name"] == "Ada Lovelace"
    assert PASSWORD not in result.stdout + result.stderr

    running = await start_app(
        Settings(_env_file=None, database_url=migrated, issuer="http://testserver", **FAST_ARGON2)  # type: ignore[call-arg]
    )
    async with running.client() as client:
        assert (await submit_login(client, "ada@example.com", PASSWORD)).status_code == 303
        account = await client.get("/account")
    assert "Ada Lovelace" in account.text
    async with running.client() as client:
        # The newline was the end of the line, not part of the password.
        assert (await submit_login(client, "ada@example.com", PASSWORD + "\n")).status_code == 400


async def test_password_stdin_keeps_inner_and_trailing_spaces(
    migrated: str, tmp_path: Path, start_app: StartApp
) -> None:
    password = "  spaces at both ends  "
    result = (await arun_idp(
        "users", "create", "--email", "sp@example.com", "--password-stdin",
        database_url=migrated, cwd=tmp_path, stdin=password + "\r\n",
    ))  # fmt: skip
    assert result.returncode == 0, result.stderr
    running = await start_app(
        Settings(_env_file=None, database_url=migrated, issuer="http://testserver", **FAST_ARGON2)  # type: ignore[call-arg]
    )
    async with running.client() as client:
        assert (await submit_login(client, "sp@example.com", password)).status_code == 303


def test_a_user_without_a_password(migrated: str, tmp_path: Path) -> None:
    result = run_idp("users", "create", "--email", "nopw@example.com", database_url=migrated, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["email"] == "nopw@example.com"


def test_a_duplicate_email_in_another_case_fails_in_one_line(migrated: str, tmp_path: Path) -> None:
    first = run_idp(
        "users", "create", "--email", "ada@example.com", "--password-stdin",
        database_url=migrated, cwd=tmp_path, stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert first.returncode == 0, first.stderr

    second = run_idp(
        "users", "create", "--email", "ADA@example.COM", "--password-stdin",
        database_url=migrated, cwd=tmp_path, stdin=PASSWORD + "\n",
    )  # fmt: skip

    line = assert_one_line_failure(second)
    assert "already exists" in line


@pytest.mark.parametrize("email", ["not-an-email", "two@@example.com"])
def test_a_malformed_email_fails_in_one_line(tmp_path: Path, email: str) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'idp.db'}"
    assert run_idp("migrate", database_url=url, cwd=tmp_path).returncode == 0
    result = run_idp(
        "users", "create", "--email", email, "--password-stdin", database_url=url, cwd=tmp_path, stdin=PASSWORD
    )
    line = assert_one_line_failure(result)
    assert "email" in line


def test_a_short_password_fails_in_one_line(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'idp.db'}"
    assert run_idp("migrate", database_url=url, cwd=tmp_path).returncode == 0
    result = run_idp(
        "users", "create", "--email", "a@example.com", "--password-stdin",
        database_url=url, cwd=tmp_path, stdin="short\n",
    )  # fmt: skip
    line = assert_one_line_failure(result)
    assert "password" in line
    assert "short" not in line.replace("at least", "")


@pytest.mark.parametrize("command", [["migrate"], ["users", "create", "--email", "a@example.com"]])
def test_an_invalid_setting_is_named(tmp_path: Path, command: list[str]) -> None:
    result = run_idp(
        *command,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'idp.db'}",
        cwd=tmp_path,
        extra_env={"IDP_ISSUER": "nope"},
    )
    line = assert_one_line_failure(result)
    assert "IDP_ISSUER" in line
    assert not (tmp_path / "idp.db").exists()  # nothing was touched


def test_an_invalid_setting_in_dotenv_is_named(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("IDP_ARGON2_TIME_COST=0\n", encoding="utf-8")
    env_without = {name: value for name, value in os.environ.items() if not name.upper().startswith("IDP_")}
    result = subprocess.run(
        [*IDP, "migrate"], capture_output=True, text=True, env=env_without, cwd=tmp_path, timeout=60, check=False
    )
    line = assert_one_line_failure(result)
    assert "IDP_ARGON2_TIME_COST" in line


def test_an_unmigrated_database_says_to_run_migrate(fresh_database: str, tmp_path: Path) -> None:
    result = run_idp(
        "users", "create", "--email", "a@example.com", "--password-stdin",
        database_url=fresh_database, cwd=tmp_path, stdin=PASSWORD + "\n",
    )  # fmt: skip
    line = assert_one_line_failure(result)
    assert "idp migrate" in line


@pytest.mark.parametrize(
    "url",
    ["postgresql+asyncpg://postgres@127.0.0.1:1/idp", "sqlite+aiosqlite:///{tmp}/missing/directory/idp.db"],
    ids=["postgresql-nothing-listening", "sqlite-missing-directory"],
)
@pytest.mark.parametrize("command", [["migrate"], ["users", "create", "--email", "a@example.com"]])
def test_an_unreachable_database_fails_in_one_line(tmp_path: Path, url: str, command: list[str]) -> None:
    result = run_idp(*command, database_url=url.format(tmp=tmp_path), cwd=tmp_path)
    line = assert_one_line_failure(result)
    assert "IDP_DATABASE_URL" in line


def test_no_command_is_a_usage_error(tmp_path: Path) -> None:
    result = run_idp(database_url=f"sqlite+aiosqlite:///{tmp_path / 'idp.db'}", cwd=tmp_path)
    assert result.returncode == 2
    assert "usage: idp" in result.stderr


# --- `idp serve`: a real server process on a free port ---


def test_serve_migrates_serves_and_logs_only_json(tmp_path: Path) -> None:
    port, management = free_port(), free_port()
    env = {name: value for name, value in os.environ.items() if not name.upper().startswith("IDP_")}
    env["IDP_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'served.db'}"
    env["IDP_ISSUER"] = f"http://127.0.0.1:{port}"
    env["IDP_MANAGEMENT_PORT"] = str(management)
    stdout_path, stderr_path = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with stdout_path.open("w") as stdout, stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            [*IDP, "serve", "--host", "127.0.0.1", "--port", str(port)],
            stdout=stdout,
            stderr=stderr,
            env=env,
            cwd=tmp_path,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 20
            healthy = False
            while time.monotonic() < deadline and process.poll() is None:
                try:
                    healthy = httpx.get(base + "/healthz", timeout=1).status_code == 200
                except httpx.TransportError:
                    healthy = False
                if healthy:
                    break
                time.sleep(0.1)
            assert healthy, stderr_path.read_text()
            login = httpx.get(base + "/login", timeout=5)
            assert login.status_code == 200
            assert 'name="csrf_token"' in login.text
            assert login.headers["x-frame-options"] == "DENY"
            assert "server" not in login.headers  # no version banner
            assert httpx.get(base + "/readyz", timeout=5).status_code == 200
            # /metrics on the management listener only, which serves the probes too.
            assert httpx.get(base + "/metrics", timeout=5).status_code == 404
            scraped = httpx.get(f"http://127.0.0.1:{management}/metrics", timeout=5)
            assert scraped.status_code == 200
            assert 'idp_http_requests_total{method="GET",route="/login",status="200"} 1.0' in scraped.text
            assert httpx.get(f"http://127.0.0.1:{management}/readyz", timeout=5).status_code == 200
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    # uvicorn shuts down gracefully, then re-raises the signal so that the exit status says how it ended.
    assert process.returncode in (0, -signal.SIGTERM)

    lines = [line for line in (stdout_path.read_text() + stderr_path.read_text()).splitlines() if line.strip()]
    assert lines, "the server wrote nothing"
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON log line: {line!r}")
    assert all(isinstance(record, dict) for record in records)
    access = [r for r in records if r.get("logger") == "idp.access"]
    assert {r["path"] for r in access} >= {"/healthz", "/login", "/readyz"}
    assert all(r.get("request_id") for r in access)
    assert (tmp_path / "served.db").is_file()  # the embedded database was created and migrated
    assert any(r.get("message") == "Application shutdown complete." for r in records)
