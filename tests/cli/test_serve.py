"""`idp serve` as a real process: slow or incomplete requests are cut off, an unmigrated database or a busy port
is said in one line, and output into a closed pipe ends quietly (INTERFACE §2, §6)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.cli.test_cli import IDP, assert_one_line_failure, run_idp
from tests.conftest import FAST_ARGON2, drop_pg_database, recreate_pg_database
from tests.support.ports import free_port

# Short, so the test waits little; the bound it checks is a few times this, far below "for ever".
REQUEST_TIMEOUT = 1.0
CUT_OFF_WITHIN = 10.0


def serve_env(database_url: str, **settings: object) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.upper().startswith("IDP_")}
    env["IDP_DATABASE_URL"] = database_url
    env.update({f"IDP_{name.upper()}": str(value) for name, value in {**FAST_ARGON2, **settings}.items()})
    return env


@contextmanager
def serving(tmp_path: Path, *args: str, **settings: object) -> Iterator[tuple[int, Path]]:
    """`idp serve` on a free port with a fresh SQLite database; yields the port and the log file."""
    port = free_port()
    env = serve_env(f"sqlite+aiosqlite:///{tmp_path / 'served.db'}", issuer=f"http://127.0.0.1:{port}", **settings)
    log = tmp_path / "serve.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [*IDP, "serve", "--host", "127.0.0.1", "--port", str(port), *args],
            stdout=sink,
            stderr=sink,
            env=env,
            cwd=tmp_path,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield port, log
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def half_request(port: int, payload: bytes) -> tuple[float, bytes]:
    """Send `payload` (an incomplete request) and read until the server closes; seconds taken and the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=CUT_OFF_WITHIN) as sock:
        started = time.monotonic()
        if payload:
            sock.sendall(payload)
        answer = b""
        while chunk := sock.recv(4096):  # a socket.timeout here means the server held the connection open
            answer += chunk
        return time.monotonic() - started, answer


INCOMPLETE = {
    "nothing-sent": b"",
    "half-the-headers": b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow",
    "half-the-body": (
        b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 200\r\n\r\nusername=a%40example.com&pass"
    ),
    # A whole request, and behind it on the same connection the start of another that never ends.
    "pipelined-after-a-whole-one": (
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 200\r\n\r\nusername="
    ),
}


def test_incomplete_requests_are_cut_off_within_the_request_timeout(tmp_path: Path) -> None:
    with serving(tmp_path, request_timeout_seconds=REQUEST_TIMEOUT, management_port=0) as (port, log):
        for name, payload in INCOMPLETE.items():
            seconds, answer = half_request(port, payload)
            assert seconds < CUT_OFF_WITHIN, name
            assert answer.count(b"HTTP/1.1 ") == (2 if name.startswith("pipelined") else 1), (name, answer)
            assert b"HTTP/1.1 408 " in answer, (name, answer)
        # The server is unharmed and still answers whole requests.
        assert httpx.get(f"http://127.0.0.1:{port}/login", timeout=5).status_code == 200
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert not [r for r in records if r["level"] in ("ERROR", "CRITICAL")], log.read_text()
    assert sum(r["message"].startswith("request not received within") for r in records) == len(INCOMPLETE)
    cut_login = [r for r in records if r.get("logger") == "idp.access" and r.get("method") == "POST"]
    # The half-sent bodies: the client is gone, nothing failed.
    assert [r["status"] for r in cut_login] == [499, 499]


def test_a_slow_but_steady_request_within_the_timeout_is_served(tmp_path: Path) -> None:
    parts = (b"GET /healthz HTTP/1.1\r\n", b"Host: 127.0.0.1\r\n", b"Connection: close\r\n", b"\r\n")
    with (
        serving(tmp_path, request_timeout_seconds=5, management_port=0) as (port, _log),
        socket.create_connection(("127.0.0.1", port), timeout=10) as sock,
    ):
        for part in parts:
            sock.sendall(part)
            time.sleep(0.2)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 ")


def test_serve_on_an_unmigrated_postgresql_says_to_run_migrate(postgres_database: str, tmp_path: Path) -> None:
    name = f"idp_test_serve_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"
    url = recreate_pg_database(name)
    try:
        result = subprocess.run(
            [*IDP, "serve", "--port", str(free_port())],
            capture_output=True,
            text=True,
            env=serve_env(url, management_port=0),
            cwd=tmp_path,
            timeout=60,
            check=False,
        )
    finally:
        drop_pg_database(name)
    line = assert_one_line_failure(result)
    assert line == "idp: the database has no idp schema yet; run `idp migrate` first"


@pytest.mark.parametrize("which", ["port", "management_port"])
def test_serve_on_a_busy_port_fails_in_one_line(tmp_path: Path, which: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        port, management = (taken, free_port()) if which == "port" else (free_port(), taken)
        result = subprocess.run(
            [*IDP, "serve", "--host", "127.0.0.1", "--port", str(port)],
            capture_output=True,
            text=True,
            env=serve_env(f"sqlite+aiosqlite:///{tmp_path / 'idp.db'}", management_port=management),
            cwd=tmp_path,
            timeout=60,
            check=False,
        )
    line = assert_one_line_failure(result)
    assert line.startswith(f"idp: port {taken} is in use; ")


def test_serve_refuses_the_same_port_twice(tmp_path: Path) -> None:
    port = free_port()
    result = run_idp(
        "serve", "--port", str(port),
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'idp.db'}", cwd=tmp_path,
        extra_env={"IDP_MANAGEMENT_PORT": str(port)},
    )  # fmt: skip
    assert "IDP_MANAGEMENT_PORT" in assert_one_line_failure(result)


def test_output_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'idp.db'}"
    assert run_idp("migrate", database_url=url, cwd=tmp_path).returncode == 0
    for index in range(3):
        created = run_idp("clients", "create", "--name", f"Board {index}", "--redirect-uri",
                          "https://jobs.example/cb", database_url=url, cwd=tmp_path)  # fmt: skip
        assert created.returncode == 0, created.stderr
    # What `idp clients list | head -c 100` does when head has exited first: the reading end is already closed.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [*IDP, "clients", "list"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env=serve_env(url),
            cwd=tmp_path,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert result.stderr == ""
    assert result.returncode == 128 + signal.SIGPIPE


def test_serve_runs_uvloop_and_httptools_and_says_so(tmp_path: Path) -> None:
    with serving(tmp_path, management_port=0) as (port, log):
        # The request line and headers are bounded by the fast parser as they were by h11.
        _, answer = half_request(
            port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n"
        )
        assert answer.startswith(b"HTTP/1.1 400 "), answer[:100]
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    stack = [r for r in records if r.get("logger") == "idp.server" and "http_parser" in r]
    assert [(r["event_loop"], r["http_parser"]) for r in stack] == [("uvloop", "httptools")], log.read_text()


def test_metrics_add_up_every_worker(tmp_path: Path) -> None:
    requests = 40
    metrics_port = free_port()
    with serving(tmp_path, "--workers", "2", management_port=metrics_port) as (port, _log):
        with httpx.Client(timeout=5) as http:  # one connection per request, so both workers take some
            for _ in range(requests):
                assert http.get(f"http://127.0.0.1:{port}/healthz", headers={"Connection": "close"}).status_code == 200
        pattern = re.compile(r'^idp_http_requests_total\{method="GET",route="/healthz",status="200"\} (\S+)$', re.M)
        for _ in range(6):  # whichever worker answers the scrape
            scrape = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", headers={"Connection": "close"}, timeout=5)
            match = pattern.search(scrape.text)
            assert match, scrape.text[:2000]
            # The readiness polls of `serving` count too (one or a few), on whichever worker.
            assert requests <= float(match.group(1)) <= requests + 30
