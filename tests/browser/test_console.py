"""The support console in a real Chromium against a live idp (INTERFACE §5), in English and in Bokmål.

A support person with `acr` `mfa` finds a job seeker who lost both phone and backup codes and resets their two-step
verification with a reason; the seeker's sessions, refresh tokens and outstanding codes end. Someone without a role
gets 403; a staff member whose session is password-only is stepped up (enrolling an authenticator first). axe-core
checks every console page; every page is saved at 1280 and 360 px under artifacts/screenshots/ (gitignored).
SQLite only here: the same rules run on both databases over HTTP in tests/http/console/.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pyotp
import pytest

from idp.auth import backup_codes
from idp.auth.crypto import Sealer
from idp.auth.tokens import derive_key
from idp.container import Idp
from idp.store import mfa as mfa_store
from tests.support.browser import Authenticator, Person
from tests.support.live import EMAIL, PASSWORD, REDIRECT_URI, Browser, LiveIdp

LANGUAGES = ["en", "nb"]
STAFF = "helper@staff.example"
REASON = "Lost phone and backup codes; passport checked in a video call (ticket 4711)"


def give_authenticator(live_idp: LiveIdp, user_id: str) -> str:
    """An authenticator and eight backup codes on the account, as if set up in another browser; the secret."""
    secret = pyotp.random_base32()

    async def add(idp: Idp) -> None:
        key = idp.settings.encryption_key
        assert key is not None
        sealed = Sealer(key.get_secret_value(), "totp").seal(secret.encode(), aad=user_id)
        digest_key = derive_key(key.get_secret_value(), "backup-codes")
        now = idp.clock.now()
        async with idp.db.transaction() as session:
            assert await mfa_store.enable_totp(session, user_id, sealed, 0, now)
            codes = [backup_codes.digest(digest_key, c) for c in backup_codes.generate()]
            await mfa_store.replace_backup_codes(session, user_id, codes, now)

    live_idp.call(add)
    return secret


def grant(live_idp: LiveIdp, user_id: str, role: str) -> None:
    live_idp.call(lambda idp: idp.users.set_role(user_id, role, True, actor="test"))


def expect_accessible(person: Person, name: str) -> None:
    """axe-core finds no violation on the page as it is now."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(person.page)
    assert results.violations_count == 0, f"{name}: {results.generate_report()}"


class JobBoard:
    """A confidential job board with the seeker signed in: a refresh token and a code not yet redeemed."""

    def __init__(self, live_idp: LiveIdp) -> None:
        self.issuer = live_idp.issuer
        self.client_id, secret = live_idp.make_client("Jobs")
        assert secret is not None
        self.auth = (self.client_id, secret)

    def authorize_url(self, state: str) -> str:
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": REDIRECT_URI,
            "scope": "openid offline_access",
            "state": state,
            "nonce": "n-" + state,
        }
        return f"{self.issuer}/authorize?{urlencode(params)}"

    def code_from(self, browser: Browser, state: str) -> str:
        back = browser.visit(self.authorize_url(state))
        return parse_qs(urlsplit(back).query)["code"][0]

    def token(self, **data: str) -> httpx.Response:
        return httpx.post(f"{self.issuer}/token", data={"redirect_uri": REDIRECT_URI, **data}, auth=self.auth)


def do_staff_sign_in(person: Person, phone: Authenticator) -> None:
    """Open /admin: the sign-in page, the authenticator code, and back in the console."""
    person.do_open("/admin", "console-sign-in")
    person.expect_at("/login")
    person.do_sign_in(STAFF, PASSWORD, name="console-verify")
    person.expect_at("/login/verify")
    person.do_enter_app_code(phone.code(), name="console-home")
    person.expect_at("/admin")
    expect_accessible(person, "console-home")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_support_resets_a_job_seekers_two_step_verification(
    lang: str, live_idp: LiveIdp, make_person: Callable[..., Person]
) -> None:
    seeker_id = live_idp.make_user()
    board = JobBoard(live_idp)
    seeker = Browser(live_idp.issuer)
    try:
        tokens = board.token(grant_type="authorization_code", code=board.code_from(seeker, "first")).json()
        outstanding = board.code_from(seeker, "second")
    finally:
        seeker.close()
    assert "refresh_token" in tokens
    give_authenticator(live_idp, seeker_id)  # ... and then lost the phone, and the backup codes with it
    assert live_idp.session_count(seeker_id) == 1

    staff_id = live_idp.make_user(STAFF, name="Helper")
    grant(live_idp, staff_id, "support")
    phone = Authenticator(give_authenticator(live_idp, staff_id))
    person = make_person(lang, "console-reset")
    do_staff_sign_in(person, phone)

    # Find the seeker by the beginning of the email, open their page.
    person.page.fill("#email", EMAIL.split("@")[0])
    with person.page.expect_navigation():
        person.page.click("form.console-search button[type=submit]")
    person._arrived("console-search")
    expect_accessible(person, "console-search")
    person._follow(f"#results a[href='/admin/users/{seeker_id}']", "console-person")
    assert person.page.inner_text(".mfa-status").strip() == person.t("On")
    assert person.page.inner_text(".codes-left").strip() == "8"
    expect_accessible(person, "console-person")

    # The reset: first the consequences, then a reason.
    person._follow(f"a[href='/admin/users/{seeker_id}/reset-mfa']", "console-reset-confirm")
    person.expect_heading("Reset two-step verification")
    assert person.page.locator("ul.consequences li").count() == 5
    expect_accessible(person, "console-reset-confirm")
    # A form whose CSRF token was tampered with: 403, and nothing changed.
    form = f"form[action='/admin/users/{seeker_id}/reset-mfa']"
    person.page.eval_on_selector(f"{form} input[name=csrf_token]", "el => { el.value = '0'.repeat(64); }")
    person._submit(form, "console-reset-forged", reason=REASON)
    person.expect_status(403)
    assert live_idp.session_count(seeker_id) == 1
    person.do_open(f"/admin/users/{seeker_id}/reset-mfa", "console-reset-confirm-again")
    person._submit(form, "console-reset-done", reason=REASON)
    person.expect_at(f"/admin/users/{seeker_id}")
    assert person.page.inner_text(".notice").strip() == person.t(
        "Two-step verification is reset. The person is signed out everywhere and sets up a new authenticator at "
        "their next sign-in."
    )
    assert person.page.inner_text(".mfa-status").strip() == person.t("Off")
    assert "admin.mfa_reset" in person.page.inner_text("ol.events")
    expect_accessible(person, "console-reset-done")

    # The seeker's sessions, refresh token and outstanding code all ended.
    assert live_idp.session_count(seeker_id) == 0
    refreshed = board.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert refreshed.json()["error"] == "invalid_grant"
    redeemed = board.token(grant_type="authorization_code", code=outstanding)
    assert redeemed.json()["error"] == "invalid_grant"

    async def reset_events(idp: Idp) -> list[Any]:
        return await idp.audit.list(user_id=seeker_id, type_="admin.mfa_reset")

    [event] = live_idp.call(reset_events)
    assert event.actor == f"staff:{staff_id}:{STAFF}"
    assert event.client_ip == "127.0.0.1"


def test_no_role_gets_403(live_idp: LiveIdp, make_person: Callable[..., Person]) -> None:
    live_idp.make_user()
    person = make_person("en", "console-no-role")
    person.do_open("/admin", "console-no-role-sign-in")
    person.do_sign_in(EMAIL, PASSWORD, name="console-403")
    person.expect_at("/admin")
    person.expect_status(403)
    person.expect_heading("Staff only")
    expect_accessible(person, "console-403")


def test_password_only_staff_is_stepped_up(live_idp: LiveIdp, make_person: Callable[..., Person]) -> None:
    """A staff member without an authenticator: enrollment first (that counts as the second factor), then in."""
    staff_id = live_idp.make_user(STAFF)
    grant(live_idp, staff_id, "admin")
    person = make_person("en", "console-step-up")
    person.do_open("/admin", "console-step-up-sign-in")
    screenshot = person.do_sign_in(STAFF, PASSWORD, name="console-enroll")
    person.expect_at("/account/security/totp")
    assert person.query["next"] == "/admin"
    phone = Authenticator(person.expect_setup_key_matches_qr(screenshot))
    person.do_enter_enrollment_code(phone.code(), name="console-backup-codes")
    person.do_codes_saved_and_continue("console-after-enrollment")
    person.expect_at("/admin")
    person.expect_status(200)
    # An admin sees the admin pages; each passes axe.
    for path, name in (
        ("/admin/clients", "console-clients"),
        ("/admin/clients/new", "console-client-new"),
        ("/admin/keys", "console-keys"),
        ("/admin/tokens", "console-tokens"),
        ("/admin/audit", "console-audit"),
    ):
        person.do_open(path, name)
        person.expect_status(200)
        expect_accessible(person, name)
