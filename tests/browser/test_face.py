"""The job board's own face in a real Chromium (issue #14): a person arriving from "Jobbnorge" (registered with a
logo) sees that name and logo on every step, can cancel back to it, sets up an authenticator on a phone-sized
screen, confirms the backup codes are saved, and is asked "Confirm it's you" for a fresh sign-in — in English and
in Bokmål. Every page is screenshotted at 1280 and 360 px (artifacts/screenshots/face/<scenario>/<lang>/) and
checked with axe-core (bundled in axe-playwright-python, injected by Playwright): zero violations.
"""

from __future__ import annotations

import io
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from tests.support.browser import BROWSER_LOCALES, DESKTOP, PHONE, SCREENSHOTS, Authenticator, Screens, english_patterns
from tests.support.live import EMAIL, PASSWORD, LiveIdp

LANGUAGES = ["en", "nb"]
LOGO = "https://cdn.jobbnorge.example/logo.png"
SITE = "Jobbnorge ID"
TIME_ZONE = "Europe/Oslo"
# The job board's own site, answered by Playwright (Chromium refuses the live tests' usual port 9 as unsafe).
RP_BASE = "https://jobbnorge.example"
REDIRECT_URI = f"{RP_BASE}/callback"


@pytest.fixture
def face_idp(sqlite_template: Path, tmp_path: Path) -> Iterator[LiveIdp]:
    """idp named "Jobbnorge ID", on a database of its own."""
    database = tmp_path / "idp.db"
    shutil.copy(sqlite_template, database)
    server = LiveIdp(f"sqlite+aiosqlite:///{database}", site_name=SITE)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def logo_png() -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (160, 48), "#123f6e")
    ImageDraw.Draw(image).text((12, 16), "jobbnorge", fill="#ffffff")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class Visitor:
    """One person's browser: every page seen is screenshotted at both widths and checked by axe-core."""

    def __init__(self, page: Any, issuer: str, lang: str, scenario: str) -> None:
        from axe_playwright_python.sync_playwright import Axe

        self.page = page
        self.issuer = issuer
        self.lang = lang
        folder = SCREENSHOTS / "face" / scenario / lang
        shutil.rmtree(folder, ignore_errors=True)
        self.screens = Screens(folder)
        self.axe = Axe()
        self.english = english_patterns() if lang != "en" else []
        # The job board's logo server (its site itself is not there: what is sent to it is read off the request).
        logo = logo_png()
        page.route("https://cdn.jobbnorge.example/**", lambda route: route.fulfill(body=logo, content_type="image/png"))

    def seen(self, name: str) -> None:
        """The page as the person sees it: in their language, accessible (axe), fitting 360 px, screenshotted."""
        self.page.wait_for_load_state()
        assert self.page.get_attribute("html", "lang") == self.lang, name
        assert self.page.title().endswith(f" · {SITE}"), (name, self.page.title())
        assert SITE in self.page.inner_text(".site-header")
        if self.english:
            text = self.page.inner_text("body") + self.page.title()
            found = sorted({english for english, pattern in self.english if pattern.search(text)})
            assert not found, f"{name} shows English in {self.lang}: {found}"
        results = self.axe.run(self.page)
        assert results.violations_count == 0, f"{name}: {results.generate_report()}"
        self.screens.shoot(self.page, name)

    def open(self, path: str, name: str) -> None:
        self.page.goto(self.issuer + path)
        self.seen(name)

    def click(self, selector: str, name: str | None = None) -> None:
        with self.page.expect_navigation():
            self.page.click(selector)
        if name:
            self.seen(name)

    def expect_board(self, name: str) -> None:
        """The board's name and its logo, loaded from the registered https address."""
        banner = self.page.locator("#board")
        assert "Jobbnorge" in banner.inner_text(), name
        loaded = self.page.eval_on_selector("#board img.board-logo", "img => img.complete && img.naturalWidth")
        assert loaded == 160, f"{name}: the board's logo did not load"

    def to_board(self, selector: str, **expected: str) -> dict[str, str]:
        """Click `selector` and be sent back to the job board's redirect URI with `expected` in the query."""
        with self.page.expect_request(lambda request: request.url.startswith(REDIRECT_URI)) as sent:
            self.page.click(selector)
        url = sent.value.url
        # The board's site is not there: let Chromium settle on its error page before the next step navigates.
        assert sent.value.response() is None
        self.page.wait_for_url(lambda at: not at.startswith(self.issuer))
        self.page.wait_for_load_state()
        assert url.startswith(REDIRECT_URI + "?"), url
        answer = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        for key, value in expected.items():
            assert answer.get(key) == value, (key, answer)
        return answer

    def sign_in(self, name: str) -> None:
        self.page.fill("#username", EMAIL)
        self.page.fill("#password", PASSWORD)
        self.click("form[action='/login'] button[type=submit]", name)


def authorize_url(client_id: str, **extra: str) -> str:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid email",
        "state": "st-face",
        "nonce": "n-face",
        **extra,
    }
    return "/authorize?" + urlencode(params)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_person_from_jobbnorge_sees_the_board_on_every_step(lang: str, chromium: Any, face_idp: LiveIdp) -> None:
    face_idp.make_user()
    display = {"client_name": "Jobbnorge", "logo_uri": LOGO, "redirect_uris": [REDIRECT_URI]}
    board, _ = face_idp.make_client("jn-prod", require_mfa=True, **display)
    asking, _ = face_idp.make_client("jn-apply", require_consent=True, **display)
    context = chromium.new_context(locale=BROWSER_LOCALES[lang], viewport=DESKTOP, timezone_id=TIME_ZONE)
    context.set_default_timeout(10_000)
    try:
        person = Visitor(context.new_page(), face_idp.issuer, lang, "from-jobbnorge")
        run_journey(person, board, asking)
    finally:
        context.close()


def run_journey(person: Visitor, board: str, asking: str) -> None:
    issuer = person.issuer

    # Sign-in names the board; "Cancel" takes the person back to it with access_denied, state and iss.
    person.open(authorize_url(board), "login-from-board")
    person.expect_board("login")
    person.to_board("form.cancel button[type=submit]", error="access_denied", state="st-face", iss=issuer)

    # The board requires two-step verification: enrollment says who asks and why, and offers the phone's app.
    person.open(authorize_url(board), "login-again")
    person.sign_in("enrollment-from-board")
    assert person.page.url.startswith(issuer + "/account/security/totp?")
    person.expect_board("enrollment")
    assert person.page.is_visible("#why")
    otpauth = person.page.get_attribute("#otpauth-link", "href")
    assert otpauth is not None
    assert otpauth.startswith("otpauth://totp/Jobbnorge%20ID:")
    assert parse_qs(urlsplit(otpauth).query)["issuer"] == [SITE]
    # The copy button is there only because idp's own script ran under the CSP (progressive enhancement).
    assert person.page.is_visible("button.copy")
    key = person.page.inner_text("#totp-secret")
    assert "\n" not in key
    box = person.page.locator("#totp-secret").bounding_box()
    assert box is not None
    assert box["height"] < 40, "the setup key wraps"
    # All of it in view, at desktop and at phone width: nothing hidden behind a scroll.
    for viewport in (DESKTOP, PHONE):
        person.page.set_viewport_size(viewport)
        hidden = person.page.eval_on_selector("#totp-secret", "el => el.scrollWidth - el.clientWidth")
        assert hidden <= 0, f"the setup key is cut off by {hidden}px at {viewport['width']}px"
    person.page.set_viewport_size(DESKTOP)
    phone = Authenticator(key.replace(" ", ""))

    # Backup codes after a redirect (reload asks nothing); leaving needs "I have saved these codes".
    person.page.fill("#code", phone.code())
    person.click("form[action='/account/security/totp'] button[type=submit]", "backup-codes")
    assert urlsplit(person.page.url).path == "/account/security/backup-codes"
    codes = [c.strip() for c in person.page.locator(".backup-code").all_inner_texts()]
    assert len(set(codes)) == 8
    person.page.reload()
    assert [c.strip() for c in person.page.locator(".backup-code").all_inner_texts()] == codes
    person.page.click("form.saved button[type=submit]")  # not ticked: the browser holds the form back
    assert urlsplit(person.page.url).path == "/account/security/backup-codes"
    person.page.check("#saved")
    answer = person.to_board("form.saved button[type=submit]", state="st-face", iss=issuer)
    assert "code" in answer

    # A board that asks for consent: named, with its logo; "Cancel" is access_denied.
    person.open(authorize_url(asking), "consent")
    person.expect_board("consent")
    person.to_board("form.decision button[value=deny]", error="access_denied", state="st-face", iss=issuer)

    # prompt=login: "Confirm it's you", the email filled in.
    person.open(authorize_url(board, prompt="login"), "confirm-its-you")
    person.expect_board("confirm")
    assert person.page.input_value("#username") == "person@example.com"

    # The second step, named and cancellable: the app code, and the backup-code page.
    person.page.goto(issuer + "/logout")
    person.click("form[action='/logout'] button[type=submit]")
    person.open(authorize_url(board), "login-for-second-step")
    person.sign_in("verify-from-board")
    person.expect_board("verify")
    person.click("a[href^='/login/recovery']", "recovery-from-board")
    person.expect_board("recovery")
    person.to_board("form.cancel button[type=submit]", error="access_denied", state="st-face", iss=issuer)

    # From the board's "My profile → Two-step verification": a way back, and times in the browser's zone.
    person.open(authorize_url(board), "login-for-profile")
    person.sign_in("verify-for-profile")
    person.page.fill("#code", phone.code())
    person.to_board("form[action='/login/verify'] button[type=submit]", state="st-face")
    query = urlencode({"client_id": board, "return_to": RP_BASE + "/my/profile"})
    person.open(f"/account/security?{query}", "security-from-board")
    back = person.page.locator("#back-to-board")
    assert back.get_attribute("href") == RP_BASE + "/my/profile"
    status = person.page.inner_text("#mfa-status")
    assert "UTC" not in status
    person.open("/account", "account")
    shown = person.page.inner_text("time")
    assert "UTC" not in shown
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", shown.strip()), shown
    person.open("/account/sessions", "sessions")
    person.open("/account/password", "password-change")
    person.open("/no/such/page", "not-found")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_other_page_passes_axe(lang: str, chromium: Any, face_idp: LiveIdp) -> None:
    """The pages the journey above does not pass through: errors, limits, sign-out, printing, a backup code used."""
    face_idp.make_user()
    context = chromium.new_context(locale=BROWSER_LOCALES[lang], viewport=DESKTOP, timezone_id=TIME_ZONE)
    context.set_default_timeout(10_000)
    try:
        person = Visitor(context.new_page(), face_idp.issuer, lang, "other-pages")
        person.open("/logout", "logout-signed-out")
        person.open("/password/forgot", "password-forgot")
        person.open("/signup", "signup")
        person.open("/end_session", "end-session")
        person.open("/login", "login-plain")
        person.page.fill("#username", EMAIL)
        person.page.fill("#password", "not the password")
        person.click("form[action='/login'] button[type=submit]", "login-refused")

        # Enroll, print the codes, then use one at sign-in.
        person.page.fill("#username", EMAIL)
        person.page.fill("#password", PASSWORD)
        person.click("form[action='/login'] button[type=submit]")
        person.open("/account/security", "security-off")
        person.click("a[href='/account/security/totp']", "enrollment-plain")
        assert not person.page.is_visible("#why")
        phone = Authenticator(person.page.inner_text("#totp-secret").replace(" ", ""))
        person.page.fill("#code", phone.code())
        person.click("form[action='/account/security/totp'] button[type=submit]", "backup-codes-plain")
        codes = [c.strip() for c in person.page.locator(".backup-code").all_inner_texts()]
        person.click("a[href='/account/security/backup-codes/print']", "backup-codes-print")
        person.open("/account/security/backup-codes", "backup-codes-again")
        person.page.check("#saved")
        person.click("form.saved button[type=submit]", "security-on")
        person.open("/logout", "logout-signed-in")
        person.click("form[action='/logout'] button[type=submit]", "signed-out")
        person.open("/login", "login-for-recovery")
        person.page.fill("#username", EMAIL)
        person.page.fill("#password", PASSWORD)
        person.click("form[action='/login'] button[type=submit]", "verify-plain")
        person.click("a[href^='/login/recovery']", "recovery-plain")
        person.page.fill("#code", codes[0])
        person.click("form[action='/login/recovery'] button[type=submit]", "recovery-done")

        # Too many wrong passwords: the limit's own page.
        person.open("/logout", "logout-before-limit")
        person.click("form[action='/logout'] button[type=submit]")
        for _ in range(5):
            person.page.goto(face_idp.issuer + "/login")
            person.page.fill("#username", EMAIL)
            person.page.fill("#password", "not the password")
            person.click("form[action='/login'] button[type=submit]")
        person.page.goto(face_idp.issuer + "/login")
        person.page.fill("#username", EMAIL)
        person.page.fill("#password", "not the password")
        person.click("form[action='/login'] button[type=submit]", "rate-limited")
        assert person.page.locator("h1").inner_text().strip() != ""
        assert person.page.locator("p[role=alert]").count() == 1
    finally:
        context.close()
