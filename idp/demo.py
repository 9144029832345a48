"""`idp demo`'s relying party: the example job board (examples/jobboard), registered once and run beside idp."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy.engine import make_url

from idp.config import Settings
from idp.services.clients import ClientService

JOBBOARD_NAME = "Demo job board"
START_SECONDS = 20.0
STOP_SECONDS = 10.0
_PACKAGE = Path(__file__).resolve().parent


class JobBoardError(Exception):
    """The job board cannot be set up or started; the message says why, for stderr."""


def jobboard_dir() -> Path:
    """examples/jobboard: the source tree's in a checkout, the packaged copy in an installed wheel."""
    for candidate in (_PACKAGE.parent / "examples" / "jobboard", _PACKAGE / "_examples" / "jobboard"):
        if (candidate / "app.py").is_file():
            return candidate
    raise JobBoardError("the demo job board (examples/jobboard) is missing from this installation")


def check_dependencies() -> None:
    """authlib's Starlette client needs an HTTP client (httpx2, or httpx) and Starlette's sessions need itsdangerous."""
    have_http = any(importlib.util.find_spec(name) for name in ("httpx2", "httpx"))
    if not have_http or importlib.util.find_spec("itsdangerous") is None:
        raise JobBoardError("the demo job board needs the demo extra: pip install -e '.[demo]'")


def client_file(settings: Settings) -> Path:
    """Where the demo client's id and secret are kept: beside the SQLite file (idp.db -> idp.demo-client.json)."""
    database = make_url(settings.database_url).database or ""
    db_path = Path(database) if database and database != ":memory:" else Path("idp.db")
    return db_path.with_suffix(".demo-client.json")


def read_saved_client(path: Path) -> tuple[str, str]:
    """The client id and secret saved by an earlier run, or empty strings."""
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        return str(saved["client_id"]), str(saved["client_secret"])
    except (OSError, ValueError, KeyError, TypeError):
        return "", ""


def save_client(path: Path, client_id: str, secret: str) -> None:
    _write_private(path, json.dumps({"client_id": client_id, "client_secret": secret}) + "\n")


async def ensure_client(clients: ClientService, saved: tuple[str, str], board_url: str) -> tuple[str, str, bool]:
    """The job board's client id and secret: the saved ones while they still work, else a newly registered
    client (then the flag is True and the caller saves them)."""
    redirect_uri, logout_uri = f"{board_url}/callback", f"{board_url}/"
    backchannel_uri = f"{board_url}/backchannel-logout"
    client_id, secret = saved
    client = await clients.find(client_id) if client_id else None
    if (
        client is not None
        and client.check_secret(secret)
        and client.redirect_uris == (redirect_uri,)
        and client.post_logout_redirect_uris == (logout_uri,)
        and client.backchannel_logout_uri == backchannel_uri
    ):
        return client_id, secret, False
    created, new_secret = await clients.create(
        JOBBOARD_NAME,
        redirect_uris=[redirect_uri],
        post_logout_redirect_uris=[logout_uri],
        backchannel_logout_uri=backchannel_uri,
    )
    assert new_secret is not None
    return created.client_id, new_secret, True


def _write_private(path: Path, content: str) -> None:
    """Write a file only its owner can read (it holds a client secret), replacing any old one in one step."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(content)
    os.replace(tmp, path)


def start_jobboard(*, host: str, port: int, issuer: str, client_id: str, client_secret: str) -> subprocess.Popen[bytes]:
    """Start the job board under uvicorn and wait until it accepts connections."""
    _check_port_free(host, port)
    env = {
        **os.environ,
        "JOBBOARD_ISSUER": issuer,
        "JOBBOARD_CLIENT_ID": client_id,
        "JOBBOARD_CLIENT_SECRET": client_secret,
        "JOBBOARD_URL": f"http://{host}:{port}",
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--app-dir",
        str(jobboard_dir()),
        "--factory",
        "app:create_app_from_env",
        "--host",
        host,
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    process = subprocess.Popen(command, env=env, preexec_fn=_exit_with_parent)  # noqa: S603 - our own interpreter and app
    if not wait_until_serving(process, host, [port], timeout=START_SECONDS):
        if process.poll() is not None:
            raise JobBoardError(f"the demo job board exited at start-up (status {process.returncode})")
        stop_jobboard(process)
        raise JobBoardError(f"the demo job board did not start on port {port} within {START_SECONDS:.0f}s")
    return process


def wait_until_serving(
    process: subprocess.Popen[bytes], host: str, ports: Iterable[int], *, timeout: float, interval: float = 0.1
) -> bool:
    """Wait until every one of `ports` on `host` accepts connections: True then, False as soon as `process` exits
    or once `timeout` seconds have passed (`process.poll()` tells which)."""
    ports = list(ports)
    deadline = time.monotonic() + timeout
    while not all(accepts(host, port) for port in ports):
        if process.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def stop_jobboard(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _exit_with_parent() -> None:
    """Linux: the job board gets SIGTERM if idp dies without cleaning up (PR_SET_PDEATHSIG), even on SIGKILL."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def _check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT is no obstacle
        try:
            probe.bind((host, port))
        except OSError:
            raise JobBoardError(f"port {port} is in use; choose another with --jobboard-port") from None


def accepts(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on `host`:`port` (a wildcard address: on 127.0.0.1)."""
    target = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104 - comparing, not binding
    try:
        with socket.create_connection((target, port), timeout=0.5):
            return True
    except OSError:
        return False
