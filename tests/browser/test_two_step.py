"""Two-step verification in a real Chromium against a live idp (INTERFACE §4), in English and in Bokmål.

The server under test runs in a thread of its own on SQLite only; PostgreSQL is covered by the same journey over
HTTP in tests/http/account/test_two_step.py. TOTP codes come from the QR code read back out of a screenshot and
the real clock, so a code is used at most once per 30 s step and the scenario waits for the next step when it must.
Every page seen is saved, full page, at desktop and 360 px wide, under artifacts/screenshots/.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.support.browser import Authenticator, Person
from tests.support.live import EMAIL, PASSWORD, LiveIdp

LANGUAGES = ["en", "nb"]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_two_step_verification_from_enabling_to_disabling(
    lang: str, live_idp: LiveIdp, make_person: Callable[..., Person]
) -> None:
    live_idp.make_user()
    person = make_person(lang, "two-step")

    # Signing in: a wrong password first, then the right one lands on the security page asked for.
    person.do_open("/account/security", "sign-in")
    person.expect_at("/login")
    person.do_sign_in(EMAIL, "not the password", name="sign-in-refused")
    person.expect_status(400)
    person.do_sign_in(EMAIL, PASSWORD, name="security-off")
    person.expect_at("/account/security")
    person.expect_security_status(enabled=False)

    # Enabling: the QR code in the screenshot holds the setup key shown beside it.
    screenshot = person.do_enable()
    person.expect_at("/account/security/totp")
    phone = Authenticator(person.expect_setup_key_matches_qr(screenshot))
    person.expect_qr_fits_phone()
    person.do_enter_enrollment_code(phone.wrong_code(), name="enroll-wrong-code")
    person.expect_refused()
    person.do_enter_enrollment_code(phone.code())
    person.expect_heading("Save your backup codes")
    codes = person.expect_backup_codes()
    expect_same_codes(person, person.do_download_codes(), codes)
    person.do_done()
    person.expect_security_status(enabled=True, codes_left=8)
    person.do_sign_out()

    # Password, then the app's code (of the next time step: the enrollment code cannot be replayed).
    person.do_open("/account", "sign-in-for-app-code")
    person.do_sign_in(EMAIL, PASSWORD, name="verify")
    person.expect_at("/login/verify")
    person.do_enter_app_code(phone.code(), name="account-after-app-code")
    person.expect_at("/account")
    person.do_sign_out()

    # Password, then a backup code: the page says how many are left.
    person.do_open("/account", "sign-in-for-backup-code")
    person.do_sign_in(EMAIL, PASSWORD, name="verify-before-recovery")
    person.do_use_a_backup_code_instead()
    person.expect_at("/login/recovery")
    person.do_enter_backup_code(codes[0])
    person.expect_codes_left(7)
    person.do_continue("account-after-backup-code")
    person.expect_at("/account")

    # New backup codes (for an old one): every old code stops working.
    person.do_open("/account/security", "security-7-left")
    person.expect_security_status(enabled=True, codes_left=7)
    person.do_regenerate_backup_codes(codes[1])
    new_codes = person.expect_backup_codes()
    assert not set(new_codes) & set(codes)
    expect_same_codes(person, person.do_download_codes(), new_codes)
    person.do_done()
    person.expect_security_status(enabled=True, codes_left=8)
    person.do_disable(codes[2], name="disable-with-old-code-refused")
    person.expect_refused(beside="form[action='/account/security/disable']")

    # Disabling with a current code: off, and the next sign-in asks for the password only.
    person.do_disable(new_codes[0])
    person.expect_at("/account/security")
    person.expect_security_status(enabled=False)
    person.do_sign_out()
    person.do_open("/account", "sign-in-password-only")
    person.do_sign_in(EMAIL, PASSWORD, name="account-password-only")
    person.expect_at("/account")
    if lang == "en":
        person.do_switch_language("nb")
        person.expect_heading("Your account")
    print(f"[{lang}] waited {phone.waited:.1f}s for TOTP time steps; {len(person.screens.taken)} screenshots")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_job_board_demanding_two_steps_takes_the_person_through_enrollment(
    lang: str, live_idp: LiveIdp, make_person: Callable[..., Person], job_board: str
) -> None:
    live_idp.make_user()
    callback = f"{job_board}/callback"
    client_id, client_secret = live_idp.make_client(
        "Job board", redirect_uris=[callback], post_logout_redirect_uris=[], require_mfa=True
    )
    assert client_secret is not None
    person = make_person(lang, "step-up")
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

    person.do_open("/authorize?" + urlencode(params), "sign-in")
    person.expect_at("/login")
    screenshot = person.do_sign_in(EMAIL, PASSWORD, name="enroll")
    person.expect_at("/account/security/totp")
    phone = Authenticator(person.expect_setup_key_matches_qr(screenshot))
    person.do_enter_enrollment_code(phone.code())
    person.expect_backup_codes()
    person.page.check("#saved")  # "I have saved these codes", then "Continue" to the job board
    with person.page.expect_navigation(url=f"{callback}?*"):
        person.page.click("form.saved button[type=submit]")
    person.screens.shoot(person.page, "job-board")

    answer = person.query
    assert answer["state"] == params["state"]
    assert answer["iss"] == live_idp.issuer
    claims = redeem(live_idp, client_id, client_secret, callback, answer["code"], verifier)
    assert claims["acr"] == "mfa"
    assert claims["amr"] == ["pwd", "otp", "mfa"]
    assert claims["nonce"] == params["nonce"]


# -- helpers ----------------------------------------------------------------------------------------------


def expect_same_codes(person: Person, downloaded: str, codes: list[str]) -> None:
    """Exactly the codes shown, one per line, after a title line in the person's language."""
    lines = downloaded.splitlines()
    assert lines[1:] == codes, downloaded
    assert lines[0] == person.t("Backup codes for %(email)s (%(site)s)") % {"email": EMAIL, "site": "idp"}


class JobBoardPage(BaseHTTPRequestHandler):
    """The relying party's callback: a page saying the person is back (the test reads the code from the URL)."""

    def do_GET(self) -> None:
        body = b"<!doctype html><html lang='en'><title>Job board</title><h1>Back at the job board</h1></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def job_board() -> Iterator[str]:
    """A tiny job board on 127.0.0.1:<free port>; its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), JobBoardPage)
    thread = threading.Thread(target=server.serve_forever, name="job-board", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def redeem(
    live_idp: LiveIdp, client_id: str, client_secret: str, callback: str, code: str, verifier: str
) -> dict[str, Any]:
    """The job board's back end: code for tokens, and the ID token's claims (its signature is another test's)."""
    response = httpx.post(
        f"{live_idp.issuer}/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": callback, "code_verifier": verifier},
        auth=(client_id, client_secret),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    payload = response.json()["id_token"].split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims
