"""Back-Channel Logout in a real Chromium (issue #11): one person signed in to two demo job boards through idp signs
out at one; idp's outbox tells both boards, and the other shows signed out on its next page load.

The boards are examples/jobboard run twice under uvicorn, each registered as its own client with its own
backchannel_logout_uri; each has its own session cookie name, since cookies are shared by every port of a host.
Screenshots under artifacts/screenshots/backchannel-logout/."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from idp.cli import DEMO_EMAIL, DEMO_PASSWORD
from idp.demo import jobboard_dir
from tests.support.browser import DESKTOP, SCREENSHOTS
from tests.support.live import LiveIdp

START_SECONDS = 20.0
# How long idp's outbox may take to tell board B; it looks for due messages every OUTBOX_POLL seconds.
TOLD_WITHIN_SECONDS = 15.0
OUTBOX_POLL = "0.2"


@pytest.fixture
def live_idp(sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveIdp]:
    """As tests/browser/conftest.py's, with an outbox worker that looks often (Settings reads IDP_* variables)."""
    monkeypatch.setenv("IDP_OUTBOX_POLL_SECONDS", OUTBOX_POLL)
    database = tmp_path / "idp.db"
    shutil.copy(sqlite_template, database)
    server = LiveIdp(f"sqlite+aiosqlite:///{database}")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@contextmanager
def job_board(live_idp: LiveIdp, name: str, log_dir: Path) -> Iterator[str]:
    """The demo job board under uvicorn on 127.0.0.1:<free port>, registered as a client of its own; yields its URL.
    Stopped on the way out, also when the test fails."""
    port = _free_port()
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
        str(jobboard_dir()),
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
        deadline = time.monotonic() + START_SECONDS
        while not _accepts(port):
            assert process.poll() is None, f"board {name} exited ({process.returncode}):\n{log.read_text()}"
            assert time.monotonic() < deadline, f"board {name} did not start:\n{log.read_text()}"
            time.sleep(0.05)
        yield url
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Shots:
    """Numbered full-page screenshots at desktop width (the boards' claims <pre> is not made for phones)."""

    def __init__(self, folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        self.folder = folder
        self.count = 0

    def shoot(self, page: Any, name: str) -> None:
        self.count += 1
        page.screenshot(path=self.folder / f"{self.count:02d}-{name}.png", full_page=True)


def test_signing_out_at_one_board_signs_the_other_out_on_its_next_page_load(
    chromium: Any, live_idp: LiveIdp, tmp_path: Path
) -> None:
    live_idp.make_user(DEMO_EMAIL, DEMO_PASSWORD, name="Demo Person")
    shots = Shots(SCREENSHOTS / "backchannel-logout")
    with ExitStack() as stack:
        board_a = stack.enter_context(job_board(live_idp, "A", tmp_path))
        board_b = stack.enter_context(job_board(live_idp, "B", tmp_path))
        context = chromium.new_context(locale="en-GB", viewport=DESKTOP)
        stack.callback(context.close)
        context.set_default_timeout(10_000)
        page = context.new_page()

        # Board A: "Sign in" leads to idp's sign-in page; the demo user's password brings the person back.
        page.goto(f"{board_a}/")
        with page.expect_navigation():
            page.click("a[href='/login']")
        assert page.url.startswith(f"{live_idp.issuer}/login?"), page.url
        page.fill("#username", DEMO_EMAIL)
        page.fill("#password", DEMO_PASSWORD)
        shots.shoot(page, "idp-sign-in")
        with page.expect_navigation(url=f"{board_a}/"):
            page.click("form[action='/login'] button[type=submit]")
        assert "Signed in as Demo Person." in page.inner_text("body")
        assert page.locator("#claims").count() == 1
        shots.shoot(page, "board-a-signed-in")

        # Board B: idp already knows the person, so signing in there asks nothing (silent SSO).
        page.goto(f"{board_b}/")
        with page.expect_navigation(url=f"{board_b}/"):
            page.click("a[href='/login']")
        assert "Signed in as Demo Person." in page.inner_text("body")
        assert page.locator("#claims").count() == 1
        shots.shoot(page, "board-b-signed-in")

        # Both still signed in: board A's session survived board B's sign-in.
        page.goto(f"{board_a}/")
        assert "Signed in as Demo Person." in page.inner_text("body")

        # Board A's "Sign out" goes through idp's end_session and back to board A.
        with page.expect_navigation(url=f"{board_a}/?*"):
            page.click("form[action='/logout'] button")
        assert "You have signed out." in page.inner_text("body")
        shots.shoot(page, "board-a-signed-out")

        # Board B was not there; idp's outbox tells it over the back channel, and its next page load shows it.
        deadline = time.monotonic() + TOLD_WITHIN_SECONDS
        while True:
            page.goto(f"{board_b}/")
            if page.locator("#signed-out").count():
                break
            assert "Signed in as Demo Person." in page.inner_text("body"), page.content()
            assert time.monotonic() < deadline, f"board B was not told within {TOLD_WITHIN_SECONDS}s"
            page.wait_for_timeout(200)
        assert page.inner_text("#signed-out").strip() == "You were signed out at idp."
        assert page.locator("#claims").count() == 0
        assert "Signed in as" not in page.inner_text("body")
        shots.shoot(page, "board-b-told")

        # And it stays signed out: the next load is the plain signed-out home page.
        page.goto(f"{board_b}/")
        assert page.locator("#claims").count() == 0
        assert page.locator("a[href='/login']").count() == 1
