"""Accounts people run themselves, in a real Chromium (issue #13): sign up from a demo job board, confirm the
address from the email idp sent (a real SMTP server), turn on two-step verification, sign out, forget the
password, reset it with a backup code, and be back at the board with `email_verified` true; and, on a phone-wide
screen, change the email address, download the data and delete the account.

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

from tests.support.browser import DESKTOP, SCREENSHOTS, Authenticator, Shots
from tests.support.live import LiveIdp, job_board
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


def link_from(smtp: SmtpServer, path: str, to: str = EMAIL) -> str:
    """The link to `path` in the newest email to `to` that has one, once idp's outbox has sent it (security notices
    arrive in between)."""
    deadline = time.monotonic() + MAIL_WITHIN_SECONDS
    while True:
        links = [u for m in smtp.inbox.to(to) for u in links_in(m) if path in u]
        if links:
            return links[-1]
        assert time.monotonic() < deadline, f"no email with a {path} link arrived"
        time.sleep(0.1)


def wait_for_email(smtp: SmtpServer, to: str, words: str) -> None:
    deadline = time.monotonic() + MAIL_WITHIN_SECONDS
    while not any(words in m.get_body(preferencelist=("plain",)).get_content() for m in smtp.inbox.to(to)):  # type: ignore[union-attr]  # every idp email has a text part
        assert time.monotonic() < deadline, f"no email to {to} saying {words!r}"
        time.sleep(0.1)


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
        page.goto(link_from(smtp, "/verify-email?token="))
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
        page.goto(link_from(smtp, "/password/reset?token="))
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


PHONE = {"width": 360, "height": 740}
MOVED = "moved@example.com"


def fits_the_screen(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def test_change_email_download_the_data_and_delete_the_account(
    chromium: Any, live_idp: LiveIdp, smtp: SmtpServer, tmp_path: Path
) -> None:
    idp = live_idp.issuer
    live_idp.make_user(EMAIL, PASSWORD, name="New Comer")
    shots = Shots(SCREENSHOTS / "accounts-manage")
    with ExitStack() as stack:
        board = stack.enter_context(job_board(live_idp, "A", tmp_path))
        context = chromium.new_context(locale="en-GB", viewport=PHONE, accept_downloads=True)
        stack.callback(context.close)
        context.set_default_timeout(10_000)
        page = context.new_page()

        # Signed in at the board, and so at idp.
        page.goto(f"{board}/")
        with page.expect_navigation():
            page.click("a[href='/login']")
        page.fill("#username", EMAIL)
        page.fill("#password", PASSWORD)
        with page.expect_navigation(url=f"{board}/"):
            page.click("form[action='/login'] button[type=submit]")

        # Change the address: a link goes to the new one; the button on its page makes the change.
        page.goto(f"{idp}/account")
        with page.expect_navigation():
            page.click("a[href='/account/email']")
        assert fits_the_screen(page)
        page.fill("#email", MOVED)
        page.fill("#password", PASSWORD)
        shots.shoot(page, "change-email")
        with page.expect_navigation():
            page.click("form[action='/account/email'] button[type=submit]")
        assert "Check your email" in page.inner_text("h1")
        page.goto(link_from(smtp, "/account/email/confirm?token=", to=MOVED))
        assert MOVED in page.inner_text("body")
        shots.shoot(page, "confirm-new-email")
        with page.expect_navigation():
            page.click("form[action='/account/email/confirm'] button[type=submit]")
        assert "Email address changed" in page.inner_text("h1")
        page.goto(f"{idp}/account")
        assert MOVED in page.inner_text("#account-email")
        wait_for_email(smtp, EMAIL, MOVED)  # the old address is told

        # Download the data.
        with page.expect_download() as download:
            page.click("a[href='/account/export']")
        data = json.loads(Path(download.value.path()).read_text())
        assert data["profile"]["email"] == MOVED
        assert data["profile"]["email_verified"] is True

        # Delete the account: every session ends, the board is told, the address no longer signs in.
        with page.expect_navigation():
            page.click("a[href='/account/delete']")
        assert fits_the_screen(page)
        page.fill("#password", PASSWORD)
        shots.shoot(page, "delete")
        with page.expect_navigation():
            page.click("form[action='/account/delete'] button[type=submit]")
        assert "Account deleted" in page.inner_text("h1")
        shots.shoot(page, "deleted")
        page.goto(f"{idp}/account")
        assert page.url.startswith(f"{idp}/login"), page.url
        page.fill("#username", MOVED)
        page.fill("#password", PASSWORD)
        with page.expect_navigation():
            page.click("form[action='/login'] button[type=submit]")
        assert "The email or password is incorrect." in page.inner_text("body")
        # The board got the logout token: its next page load is signed out.
        deadline = time.monotonic() + MAIL_WITHIN_SECONDS
        while True:
            page.goto(f"{board}/")
            if "You were signed out at idp." in page.inner_text("body"):
                break
            assert time.monotonic() < deadline, "the board was not told"
            time.sleep(0.2)
    wait_for_email(smtp, MOVED, "was deleted")
