"""Accounts people run themselves, in a real Chromium (issue #13): sign up from a demo job board, confirm the
address from the email idp sent (a real SMTP server), turn on two-step verification, sign out, forget the
password, reset it with a backup code, and be back at the board with `email_verified` true.

Screenshots under artifacts/screenshots/accounts/."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_backchannel_logout import Shots, job_board
from tests.support.browser import DESKTOP, SCREENSHOTS, Authenticator
from tests.support.live import LiveIdp
from tests.support.smtp import SmtpServer, links_in, smtp_server

EMAIL = "newcomer@example.com"
PASSWORD = "violet kettle drums at midnight"
NEW_PASSWORD = "seven quiet herons over the fjord"
MAIL_WITHIN_SECONDS = 15.0


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def live_idp(sqlite_template: Path, tmp_path: Path, smtp: SmtpServer) -> Iterator[LiveIdp]:
    """As tests/browser/conftest.py's, sending email to the test's SMTP server, sign-up open to everyone."""
    database = tmp_path / "idp.db"
    shutil.copy(sqlite_template, database)
    server = LiveIdp(f"sqlite+aiosqlite:///{database}", smtp_url=smtp.url, signup="open", outbox_poll_seconds=0.2)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def link_from(smtp: SmtpServer, count: int, path: str) -> str:
    """The link in the `count`-th email to the newcomer, once idp's outbox has sent it."""
    deadline = time.monotonic() + MAIL_WITHIN_SECONDS
    while len(smtp.inbox.to(EMAIL)) < count:
        assert time.monotonic() < deadline, f"email {count} did not arrive"
        time.sleep(0.1)
    [link] = [u for u in links_in(smtp.inbox.to(EMAIL)[count - 1]) if path in u]
    return link


def claims_on(page: Any) -> dict[str, Any]:
    return json.loads(page.inner_text("#claims"))  # type: ignore[no-any-return]


def test_sign_up_verify_enable_two_step_forget_and_reset(
    chromium: Any, live_idp: LiveIdp, smtp: SmtpServer, tmp_path: Path
) -> None:
    idp = live_idp.issuer
    shots = Shots(SCREENSHOTS / "accounts")
    with ExitStack() as stack:
        board = stack.enter_context(job_board(live_idp, "A", tmp_path))
        context = chromium.new_context(locale="en-GB", viewport=DESKTOP)
        stack.callback(context.close)
        context.set_default_timeout(10_000)
        page = context.new_page()

        # Sign up from the board's sign-in.
        page.goto(f"{board}/")
        with page.expect_navigation():
            page.click("a[href='/login']")
        assert page.url.startswith(f"{idp}/login?"), page.url
        with page.expect_navigation():
            page.click("a[href^='/signup']")
        page.fill("#email", EMAIL)
        page.fill("#name", "New Comer")
        page.fill("#password", PASSWORD)
        shots.shoot(page, "sign-up")
        with page.expect_navigation():
            page.click("form[action='/signup'] button[type=submit]")
        assert "Check your email" in page.inner_text("h1")
        shots.shoot(page, "check-your-email")

        # The confirmation link leads back into the board's sign-in; signing in lands on the board, verified.
        page.goto(link_from(smtp, 1, "/verify-email?token="))
        assert page.url.startswith(f"{idp}/login?"), page.url
        page.fill("#username", EMAIL)
        page.fill("#password", PASSWORD)
        with page.expect_navigation(url=f"{board}/"):
            page.click("form[action='/login'] button[type=submit]")
        assert claims_on(page)["email_verified"] is True
        shots.shoot(page, "board-verified")

        # Two-step verification on.
        page.goto(f"{idp}/account/security/totp")
        app = Authenticator(page.inner_text("#totp-secret").replace(" ", ""))
        page.fill("#code", app.code())
        with page.expect_navigation():
            page.click("form[action='/account/security/totp'] button[type=submit]")
        backup_codes = [c.strip() for c in page.locator(".backup-code").all_inner_texts()]
        assert len(backup_codes) == 8
        shots.shoot(page, "two-step-on")

        # Sign out at the board (and so at idp).
        page.goto(f"{board}/")
        with page.expect_navigation(url=re.compile(re.escape(board) + r"/\?.*")):
            page.click("form[action='/logout'] button")
        assert "You have signed out." in page.inner_text("body")

        # Forgot the password: the link comes by email; the reset asks for a code as well.
        with page.expect_navigation():
            page.click("a[href='/login']")
        with page.expect_navigation():
            page.click("a[href^='/password/forgot']")
        page.fill("#email", EMAIL)
        with page.expect_navigation():
            page.click("form[action='/password/forgot'] button[type=submit]")
        assert "Check your email" in page.inner_text("h1")
        page.goto(link_from(smtp, 2, "/password/reset?token="))
        assert page.locator("#code").count() == 1
        page.fill("#password", NEW_PASSWORD)
        page.fill("#code", backup_codes[0])
        shots.shoot(page, "reset-with-a-code")
        with page.expect_navigation():
            page.click("form[action='/password/reset'] button[type=submit]")
        assert "Your password was changed" in page.inner_text("h1")
        shots.shoot(page, "reset-done")

        # Back at the board: sign in with the new password and the app's code.
        page.goto(f"{board}/")
        with page.expect_navigation():
            page.click("a[href='/login']")
        page.fill("#username", EMAIL)
        page.fill("#password", NEW_PASSWORD)
        with page.expect_navigation():
            page.click("form[action='/login'] button[type=submit]")
        assert page.url.startswith(f"{idp}/login/verify"), page.url
        page.fill("#code", app.code())
        with page.expect_navigation(url=f"{board}/"):
            page.click("form[action='/login/verify'] button[type=submit]")
        claims = claims_on(page)
        assert claims["email_verified"] is True
        assert claims["acr"] == "mfa"
        shots.shoot(page, "board-after-reset")
    # A notice that the password changed went out too.
    assert any("was just changed" in m.get_body(preferencelist=("plain",)).get_content() for m in smtp.inbox.to(EMAIL))  # type: ignore[union-attr]
