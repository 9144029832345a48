"""A real idp on a real port (uvicorn in a thread, the wall clock) and a scripted browser, for RP libraries; and
the helpers for servers run as child processes (waiting until they serve, stopping them, the demo job board)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import uvicorn

from idp import demo
from idp.app import create_app
from idp.config import Settings
from idp.container import Idp
from tests.conftest import FAST_ARGON2
from tests.support.ports import free_port

PASSWORD = "a long and correct password"
EMAIL = "person@example.com"
RP_BASE = "http://127.0.0.1:9/rp"  # the RP itself never listens: its "browser" stops at the redirect
REDIRECT_URI = f"{RP_BASE}/callback"
LOGOUT_URI = f"{RP_BASE}/signed-out"
_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')
START_TIMEOUT = 20.0


class LiveIdp:
    """idp served by uvicorn on 127.0.0.1:<free port>; its issuer is that base URL."""

    def __init__(self, database_url: str, *, host: str = "127.0.0.1", **overrides: Any) -> None:
        """`host` names the issuer's host (it listens on 127.0.0.1 either way): WebAuthn takes no IP address as
        its RP ID, so the passkey scenarios use "localhost"."""
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.issuer = f"http://{host}:{self._socket.getsockname()[1]}"
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            database_url=database_url,
            issuer=self.issuer,
            secret_key="s" * 40,
            encryption_key="e" * 40,
            **{**FAST_ARGON2, **overrides},
        )
        self.app = create_app(settings)
        config = uvicorn.Config(self.app, lifespan="on", log_config=None, access_log=False)
        self._server = uvicorn.Server(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._serve, name="live-idp", daemon=True)

    def _serve(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._server.serve(sockets=[self._socket]))
        finally:
            self._loop.close()

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("idp did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=START_TIMEOUT)
        self._socket.close()

    @property
    def idp(self) -> Idp:
        return self.app.state.idp  # type: ignore[no-any-return]

    def call(self, make: Callable[[Idp], Coroutine[Any, Any, Any]]) -> Any:
        """Run a service call on the server's own event loop (its database connections belong to it)."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(make(self.idp), self._loop).result(timeout=START_TIMEOUT)

    def make_user(self, email: str = EMAIL, password: str = PASSWORD, name: str = "Pat") -> str:
        user = self.call(lambda idp: idp.users.create(email, password=password, name=name))
        return str(user.id)

    def make_client(self, name: str = "Jobs", **kw: Any) -> tuple[str, str | None]:
        kw.setdefault("redirect_uris", [REDIRECT_URI])
        kw.setdefault("post_logout_redirect_uris", [LOGOUT_URI])
        client, secret = self.call(lambda idp: idp.clients.create(name, **kw))
        return client.client_id, secret

    def session_count(self, user_id: str) -> int:
        """Live idp sessions of a person, counted through the store (not through a cookie we hold)."""
        from sqlalchemy import func, select

        from idp.store.models import LoginSession

        async def count(idp: Idp) -> int:
            async with idp.db.transaction() as session:
                query = select(func.count()).select_from(LoginSession).where(LoginSession.user_id == user_id)
                return int((await session.execute(query)).scalar_one())

        return int(self.call(count))


class Browser:
    """A person's browser: keeps idp's cookies, follows idp's redirects, stops at the first one leaving idp."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer
        self.http = httpx.Client(follow_redirects=False, timeout=10)

    def close(self) -> None:
        self.http.close()

    def visit(self, url: str, *, email: str = EMAIL, password: str = PASSWORD) -> str:
        """Open `url`, sign in when idp asks, and return the first URL outside idp that we are sent to."""
        for _ in range(10):
            if not url.startswith(self.issuer):
                return url
            response = self.http.get(url)
            if response.status_code == 200 and urlsplit(url).path == "/login":
                response = self._sign_in(url, response.text, email, password)
            assert response.status_code in (302, 303), (response.status_code, response.text[:500])
            url = urljoin(url, response.headers["location"])
        raise AssertionError("too many redirects")

    def _sign_in(self, url: str, page: str, email: str, password: str) -> httpx.Response:
        match = _CSRF.search(page)
        assert match, "no csrf_token on the sign-in page"
        next_url = parse_qs(urlsplit(url).query).get("next", [""])[0]
        data = {"username": email, "password": password, "csrf_token": match.group(1), "next": next_url}
        return self.http.post(f"{self.issuer}/login", data=data)

    def has_idp_session(self) -> bool:
        return "idp_session" in self.http.cookies


# -- servers in child processes ------------------------------------------------------------------------------------


def accepts(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:`port`."""
    return demo.accepts("127.0.0.1", port)


def wait_until_serving(
    process: subprocess.Popen[bytes],
    ports: Iterable[int],
    log: Path,
    *,
    what: str,
    timeout: float,
    interval: float = 0.05,
) -> None:
    """Return once every port accepts connections; fail with the process's `log` if it exits or `timeout` passes."""
    if not demo.wait_until_serving(process, "127.0.0.1", ports, timeout=timeout, interval=interval):
        assert process.poll() is None, f"{what} exited ({process.returncode}):\n{log.read_text()}"
        raise AssertionError(f"{what} did not start:\n{log.read_text()}")


def wait_until_closed(port: int, *, message: str, timeout: float = 10.0) -> None:
    """Return once nothing accepts on `port` any more; fail with `message` after `timeout`."""
    deadline = time.monotonic() + timeout
    while accepts(port):
        assert time.monotonic() < deadline, message
        time.sleep(0.1)


def stop(process: subprocess.Popen[bytes], *, timeout: float) -> None:
    """SIGTERM (a graceful shutdown), and SIGKILL if it has not exited within `timeout` seconds."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


BOARD_START_SECONDS = 20.0


@contextmanager
def job_board(live_idp: LiveIdp, name: str, log_dir: Path) -> Iterator[str]:
    """The demo job board under uvicorn on 127.0.0.1:<free port>, registered as a client of its own; yields its URL.
    Stopped on the way out, also when the test fails."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    client_id, secret = live_idp.make_client(
        f"Job board {name}",
        redirect_uris=[f"{url}/callback"],
        post_logout_redirect_uris=[f"{url}/"],
        backchannel_logout_uri=f"{url}/backchannel-logout",
    )
    assert secret is not None
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("IDP_", "JOBBOARD_"))},
        "JOBBOARD_ISSUER": live_idp.issuer,
        "JOBBOARD_CLIENT_ID": client_id,
        "JOBBOARD_CLIENT_SECRET": secret,
        "JOBBOARD_URL": url,
        "JOBBOARD_SESSION_COOKIE": f"jobboard_{name.lower()}_session",
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--app-dir",
        str(demo.jobboard_dir()),
        "--factory",
        "app:create_app_from_env",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    log = log_dir / f"board-{name}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        wait_until_serving(process, [port], log, what=f"board {name}", timeout=BOARD_START_SECONDS)
        yield url
    finally:
        stop(process, timeout=10)
