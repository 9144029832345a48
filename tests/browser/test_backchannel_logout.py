"""Back-Channel Logout in a real Chromium (issue #11): one person signed in to two demo job boards through idp signs
out at one; idp's outbox tells both boards, and the other shows signed out on its next page load.

The boards are examples/jobboard run twice under uvicorn, each registered as its own client with its own
backchannel_logout_uri; each has its own session cookie name, since cookies are shared by every port of a host.
Screenshots under artifacts/screenshots/backchannel-logout/."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from idp.cli import DEMO_EMAIL, DEMO_PASSWORD
from tests.support.browser import DESKTOP, SCREENSHOTS, Shots
from tests.support.live import LiveIdp, job_board

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
