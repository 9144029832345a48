"""Passkeys in a real Chromium (INTERFACE §4): Chromium's virtual authenticator (DevTools WebAuthn domain through
Playwright's CDP session) adds a passkey on /account/security/passkeys, answers "Use a passkey" at /login/verify for
a job board that demands two steps, and the ID token says `hwk` or `swk`; then the passkey is removed. A
passkey-only person resets a forgotten password with "Use a passkey" on /password/reset.

The server runs on SQLite only, as every browser scenario (PostgreSQL: tests/http/account/test_passkeys.py). Its
issuer is http://localhost:<port>: WebAuthn refuses an IP address as the RP ID.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.browser.test_two_step import job_board, redeem  # noqa: F401  (job_board is a fixture)
from tests.support.browser import DESKTOP, SCREENSHOTS, Person, Screens
from tests.support.live import EMAIL, PASSWORD, LiveIdp


@pytest.fixture
def live_idp(sqlite_template: Path, tmp_path: Path) -> Iterator[LiveIdp]:
    """idp at http://localhost:<free port> on a database of its own."""
    database = tmp_path / "idp.db"
    shutil.copy(sqlite_template, database)
    server = LiveIdp(f"sqlite+aiosqlite:///{database}", host="localhost")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def do_add_virtual_authenticator(person: Person, *, resident_key: bool, synced: bool) -> Any:
    """A platform authenticator with user verification (a phone's screen lock) that answers by itself."""
    cdp = person.page.context.new_cdp_session(person.page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    options = {
        "protocol": "ctap2",
        "transport": "internal",
        "hasResidentKey": resident_key,
        "hasUserVerification": True,
        "isUserVerified": True,
        "automaticPresenceSimulation": True,
        "defaultBackupEligibility": synced,
        "defaultBackupState": synced,
    }
    answer = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": options})
    return cdp, answer["authenticatorId"]


def do_add_passkey(person: Person, name: str) -> bytes:
    person.page.fill("#passkey-name", name)
    with person.page.expect_navigation():
        person.page.click("#passkey-add-button")
    return person._arrived("passkey-added")


def do_use_passkey(person: Person, expect_url: str) -> None:
    button = person.page.locator("#passkey-verify-button")
    assert button.inner_text().strip() == person.t("Use a passkey")
    with person.page.expect_navigation(url=expect_url):
        button.click()


@pytest.mark.parametrize(
    ("lang", "resident_key", "synced", "method"),
    [("en", True, False, "hwk"), ("nb", False, True, "swk")],
    ids=["device-bound-discoverable-en", "synced-nb"],
)
def test_add_a_passkey_sign_in_with_it_for_a_job_board_and_remove_it(
    lang: str,
    resident_key: bool,
    synced: bool,
    method: str,
    live_idp: LiveIdp,
    make_person: Callable[..., Person],
    job_board: str,  # noqa: F811  (the fixture imported above)
) -> None:
    live_idp.make_user()
    callback = f"{job_board}/callback"
    client_id, client_secret = live_idp.make_client(
        "Job board", redirect_uris=[callback], post_logout_redirect_uris=[], require_mfa=True
    )
    assert client_secret is not None
    person = make_person(lang, f"passkeys-{method}")
    cdp, authenticator = do_add_virtual_authenticator(person, resident_key=resident_key, synced=synced)

    # Adding: sign in, name it, and the browser's authenticator makes it; the first passkey turns two-step on.
    person.do_open("/account/security/passkeys", "sign-in")
    person.expect_at("/login")
    person.do_sign_in(EMAIL, PASSWORD, name="passkeys-none")
    person.expect_at("/account/security/passkeys")
    person.expect_heading("Passkeys")
    assert person.page.locator("#no-passkeys").is_visible()
    do_add_passkey(person, "Min telefon" if lang == "nb" else "My phone")
    person.expect_heading("Save your backup codes")
    codes = person.expect_backup_codes()
    person.do_done()
    person.expect_security_status(enabled=True, codes_left=8)
    [credential] = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    assert credential["isResidentCredential"] is resident_key
    person.do_sign_out()

    # The job board demands two steps: the password, then "Use a passkey" instead of a code.
    verifier = secrets.token_urlsafe(48)
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": callback,
        "scope": "openid email",
        "state": secrets.token_urlsafe(8),
        "nonce": secrets.token_urlsafe(8),
        "code_challenge": base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode(),
        "code_challenge_method": "S256",
    }
    person.do_open("/authorize?" + urlencode(params), "sign-in-for-job-board")
    person.do_sign_in(EMAIL, PASSWORD, name="verify-with-passkey")
    person.expect_at("/login/verify")
    do_use_passkey(person, f"{callback}?*")
    person.screens.shoot(person.page, "job-board")
    answer = person.query
    assert answer["state"] == params["state"]
    claims = redeem(live_idp, client_id, client_secret, callback, answer["code"], verifier)
    assert claims["amr"] == ["pwd", method, "mfa"]
    assert claims["acr"] == "mfa"
    assert claims["nonce"] == params["nonce"]

    # Listed with its last use; removing the only one is turning two-step verification off: a backup code.
    person.do_open("/account/security/passkeys", "passkeys-one")
    name = "Min telefon" if lang == "nb" else "My phone"
    assert person.page.inner_text(".passkey-name").strip() == name
    assert person.page.inner_text(".passkey-last-used").strip() != person.t("Never")
    kind = person.page.inner_text(".passkey-kind").strip()
    assert kind == person.t("Synced between your devices" if synced else "Kept on one device")
    person.page.fill("#remove-code-1", codes[0])
    with person.page.expect_navigation():
        person.page.click(".passkey form[action$='/remove'] button[type=submit]")
    person._arrived("passkey-removed")
    person.expect_at("/account/security")
    person.expect_security_status(enabled=False)


def test_a_browser_without_webauthn_is_told_what_to_do(live_idp: LiveIdp, make_person: Callable[..., Person]) -> None:
    live_idp.make_user()
    person = make_person("en", "passkeys-unsupported")
    # As a browser without WebAuthn looks to the page (PublicKeyCredential missing), before any script runs.
    person.page.add_init_script("delete window.PublicKeyCredential;")
    person.do_open("/account/security/passkeys", "sign-in")
    person.do_sign_in(EMAIL, PASSWORD, name="passkeys-unsupported")
    person.expect_at("/account/security/passkeys")
    message = person.page.locator("#passkey-add .passkey-unsupported")
    message.wait_for(state="visible")
    assert message.inner_text().strip() == person.t(
        "This browser cannot make passkeys. Use an authenticator app instead, or open this page in an up-to-date "
        "browser on your phone or computer."
    )
    assert person.page.locator("#passkey-add-button").is_disabled()


@pytest.fixture
def passkey_signin_idp(sqlite_template: Path, tmp_path: Path) -> Iterator[LiveIdp]:
    """idp at http://localhost:<free port> with IDP_PASSKEY_SIGNIN on."""
    database = tmp_path / "signin.db"
    shutil.copy(sqlite_template, database)
    server = LiveIdp(f"sqlite+aiosqlite:///{database}", host="localhost", passkey_signin=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_sign_in_with_a_passkey_alone_for_a_job_board(
    passkey_signin_idp: LiveIdp,
    chromium: Any,
    job_board: str,  # noqa: F811  (the fixture imported above)
) -> None:
    live = passkey_signin_idp
    live.make_user()
    callback = f"{job_board}/callback"
    client_id, client_secret = live.make_client(
        "Job board", redirect_uris=[callback], post_logout_redirect_uris=[], require_mfa=True
    )
    assert client_secret is not None
    context = chromium.new_context(locale="en-GB", viewport=DESKTOP)
    context.set_default_timeout(10_000)
    try:
        folder = SCREENSHOTS / "passkey-signin" / "en"
        shutil.rmtree(folder, ignore_errors=True)
        person = Person(context.new_page(), live.issuer, "en", Screens(folder))
        do_add_virtual_authenticator(person, resident_key=True, synced=False)
        person.do_open("/account/security/passkeys", "sign-in")
        person.do_sign_in(EMAIL, PASSWORD, name="passkeys-none")
        do_add_passkey(person, "My phone")
        person.expect_backup_codes()
        person.do_done()
        person.do_sign_out()

        verifier = secrets.token_urlsafe(48)
        params = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": callback,
            "scope": "openid",
            "state": secrets.token_urlsafe(8),
            "nonce": secrets.token_urlsafe(8),
            "code_challenge": base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            .rstrip(b"=")
            .decode(),
            "code_challenge_method": "S256",
        }
        person.do_open("/authorize?" + urlencode(params), "sign-in-with-passkey")
        person.expect_at("/login")
        button = person.page.locator("#passkey-signin-button")
        assert button.inner_text().strip() == person.t("Sign in with a passkey")
        # No email, no password: the passkey on the device names the account.
        with person.page.expect_navigation(url=f"{callback}?*"):
            button.click()
        person.screens.shoot(person.page, "job-board")
        claims = redeem(live, client_id, client_secret, callback, person.query["code"], verifier)
        assert (claims["amr"], claims["acr"]) == (["hwk", "mfa"], "mfa")
    finally:
        context.close()


def test_reset_a_forgotten_password_with_a_passkey(live_idp: LiveIdp, make_person: Callable[..., Person]) -> None:
    """A person whose only second factor is a passkey resets the password with it (no code at all)."""
    user_id = live_idp.make_user()
    person = make_person("en", "passkey-reset")
    do_add_virtual_authenticator(person, resident_key=False, synced=False)
    person.do_open("/account/security/passkeys", "sign-in")
    person.do_sign_in(EMAIL, PASSWORD, name="passkeys-none")
    do_add_passkey(person, "My phone")
    person.expect_backup_codes()
    person.do_done()
    assert live_idp.session_count(user_id) == 1

    # The link support hands out (the same page as the emailed one).
    link = live_idp.call(lambda idp: idp.accounts.reset_link_for_support(user_id, actor="test", send=False))
    person.do_open(link.removeprefix(live_idp.issuer), "reset-page")
    person.expect_heading("Choose a new password")
    button = person.page.locator("#passkey-reset-button")
    button.wait_for(state="visible")
    assert button.inner_text().strip() == person.t("Use a passkey")
    new_password = "violet kettle drums at midnight"
    person.page.fill("#password", new_password)
    with person.page.expect_navigation():
        button.click()
    person._arrived("reset-with-a-passkey")
    person.expect_heading("Your password was changed")
    # As with a code: every session of the person ended; the new password leads to the second step.
    assert live_idp.session_count(user_id) == 0
    person.do_open("/login", "sign-in-after-reset")
    person.do_sign_in(EMAIL, new_password, name="verify-after-reset")
    person.expect_at("/login/verify")
