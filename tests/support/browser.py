"""A person at a real Chromium (Playwright), in do_* / expect_* steps, with a full-page screenshot of every page
seen, at desktop and at phone width, in the person's language."""

from __future__ import annotations

import io
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pyotp
from babel.messages.pofile import read_po
from playwright.sync_api import Error as PlaywrightError

from idp.i18n import LOCALES_DIR, load_translations

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Response

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REQUIRE_BROWSER = os.environ.get("IDP_TEST_REQUIRE_BROWSER", "") not in ("", "0", "false")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}
# The browser's language for each of idp's languages: Accept-Language follows the context's locale.
BROWSER_LOCALES = {"en": "en-GB", "nb": "nb-NO"}
# Words that are the same in both languages, or names: never a sign of a missing translation.
SAME_IN_BOTH = {"English", "Norsk bokmål", "idp"}


def browser_problem() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (Debian: apt-get install chromium)"
    for module, package in (("playwright.sync_api", "playwright"), ("zxingcpp", "zxing-cpp"), ("PIL", "Pillow")):
        try:
            __import__(module)
        except ImportError:
            return f"the Python package {package} is missing (pip install -e '.[test]')"
    return None


def launch(playwright: Any) -> Browser:
    browser: Browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    return browser


def decode_qr(png: bytes) -> list[str]:
    """The text of every QR code zxing-cpp finds in a screenshot."""
    import zxingcpp
    from PIL import Image

    image = Image.open(io.BytesIO(png))
    image.load()
    return [found.text for found in zxingcpp.read_barcodes(image) if found.format == zxingcpp.BarcodeFormat.QRCode]


def english_patterns() -> list[tuple[str, re.Pattern[str]]]:
    """Each English message that Bokmål translates differently, as a pattern finding it verbatim in page text."""
    with (LOCALES_DIR / "nb" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale="nb")
    patterns = []
    for message in catalog:
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for english in ids:
            if not english or english in SAME_IN_BOTH or english in strings:
                continue
            parts = re.split(r"%\(\w+\)s", english)
            body = r".+?".join(re.escape(part) for part in parts)
            patterns.append((english, re.compile(rf"(?<![\w-]){body}(?![\w-])")))
    return patterns


class Authenticator:
    """The person's phone app: the code of the current 30 s step, never one the server already accepted.

    idp refuses a code whose time step is not later than the last one it accepted (INTERFACE §4), so before
    each use after the first we wait, on the real clock, for the next step."""

    def __init__(self, secret: str) -> None:
        self.totp = pyotp.TOTP(secret)
        self.last_step: int | None = None
        self.waited = 0.0

    def code(self) -> str:
        while self.last_step is not None and self.totp.timecode(_now()) <= self.last_step:
            pause = self.totp.interval - time.time() % self.totp.interval + 0.05
            self.waited += pause
            time.sleep(pause)
        self.last_step = self.totp.timecode(_now())
        return self.totp.generate_otp(self.last_step)

    def wrong_code(self) -> str:
        """Six digits that are the code of no step near now."""
        step = self.totp.timecode(_now())
        near = {self.totp.generate_otp(step + k) for k in range(-2, 3)}
        return next(code for code in ("123456", "234567", "345678", "456789", "567890") if code not in near)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Screens:
    """Numbered full-page screenshots of one scenario, desktop and 360 px wide, under artifacts/screenshots/."""

    folder: Path
    taken: list[Path] = field(default_factory=list)

    def shoot(self, page: Page, name: str) -> bytes:
        """Both widths; the phone one must not scroll sideways. Returns the desktop PNG."""
        stem = f"{len(self.taken) // 2 + 1:02d}-{name}"
        self.folder.mkdir(parents=True, exist_ok=True)
        desktop = _screenshot(page, self.folder / f"{stem}.png")
        page.set_viewport_size(PHONE)
        try:
            _screenshot(page, self.folder / f"{stem}-360.png")
            overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        finally:
            page.set_viewport_size(DESKTOP)
        self.taken += [self.folder / f"{stem}.png", self.folder / f"{stem}-360.png"]
        assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at 360px wide"
        return desktop


def _screenshot(page: Page, path: Path) -> bytes:
    # On a loaded machine Chromium now and then has no frame ready and answers Page.captureScreenshot with "Unable
    # to capture screenshot"; the page is the same a moment later, so the capture is tried again, up to three times.
    for attempt in range(3):
        try:
            return page.screenshot(path=path, full_page=True)
        except PlaywrightError as error:
            if "Unable to capture screenshot" not in str(error) or attempt == 2:
                raise
            page.wait_for_timeout(250)
    raise AssertionError("unreachable")


class Person:
    """One person in one browser context, speaking `lang` ("en" or "nb") through Accept-Language."""

    def __init__(self, page: Page, issuer: str, lang: str, screens: Screens) -> None:
        self.page = page
        self.issuer = issuer
        self.lang = lang
        self.screens = screens
        self.statuses: list[int] = []
        self._translations = load_translations(lang)
        self._english = english_patterns() if lang != "en" else []
        page.on("response", self._seen)

    # -- plumbing -------------------------------------------------------------------------------------

    def _seen(self, response: Response) -> None:
        if response.request.is_navigation_request() and response.frame == self.page.main_frame:
            self.statuses.append(response.status)

    def t(self, message: str) -> str:
        """`message` as idp shows it in this person's language."""
        return self._translations.gettext(message)

    @property
    def path(self) -> str:
        return urlsplit(self.page.url).path

    @property
    def query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.page.url).query).items()}

    def _arrived(self, name: str) -> bytes:
        """Every page seen: in the person's language, then screenshots at both widths."""
        self.page.wait_for_load_state()
        assert self.page.get_attribute("html", "lang") == self.lang, f"{name}: not in {self.lang}"
        if self._english:
            self.expect_no_english(name)
        return self.screens.shoot(self.page, name)

    def _submit(self, form: str, name: str, **fields: str) -> bytes:
        for selector, value in fields.items():
            self.page.fill(f"{form} #{selector}", value)
        with self.page.expect_navigation():
            self.page.click(f"{form} button[type=submit]")
        return self._arrived(name)

    def _follow(self, link: str, name: str) -> bytes:
        with self.page.expect_navigation():
            self.page.click(link)
        return self._arrived(name)

    # -- steps ----------------------------------------------------------------------------------------

    def do_open(self, path: str, name: str) -> bytes:
        self.page.goto(self.issuer + path)
        return self._arrived(name)

    def do_sign_in(self, email: str, password: str, name: str = "sign-in-done") -> bytes:
        """On the sign-in page: email and password, then "Sign in"."""
        assert self.path == "/login", self.page.url
        self.page.fill("#username", email)
        self.page.fill("#password", password)
        self.screens.shoot(self.page, "sign-in-filled")
        with self.page.expect_navigation():
            self.page.click("form[action='/login'] button[type=submit]")
        return self._arrived(name)

    def do_enable(self) -> bytes:
        """On the security page: "Enable two-step verification" leads to the enrollment page."""
        link = self.page.locator("a[href='/account/security/totp']")
        assert link.inner_text().strip() == self.t("Enable two-step verification")
        return self._follow("a[href='/account/security/totp']", "enroll")

    def do_enter_enrollment_code(self, code: str, name: str = "backup-codes") -> bytes:
        return self._submit("form[action='/account/security/totp']", name, code=code)

    def do_enter_app_code(self, code: str, name: str = "signed-in-with-app-code") -> bytes:
        return self._submit("form[action='/login/verify']", name, code=code)

    def do_enter_backup_code(self, code: str, name: str = "signed-in-with-backup-code") -> bytes:
        return self._submit("form[action='/login/recovery']", name, code=code)

    def do_use_a_backup_code_instead(self) -> bytes:
        link = "a[href^='/login/recovery']"
        assert self.page.locator(link).inner_text().strip() == self.t("Use a backup code instead")
        return self._follow(link, "recovery")

    def do_continue(self, name: str) -> bytes:
        link = "a.button.primary"
        assert self.page.locator(link).inner_text().strip() == self.t("Continue")
        return self._follow(link, name)

    def do_done(self) -> bytes:
        """Leave the backup codes page for the security page: "I have saved these codes", then "Done"."""
        button = "form.saved button[type=submit]"
        assert self.page.locator(button).inner_text().strip() == self.t("Done")
        self.page.check("#saved")
        return self._follow(button, "security-on")

    def do_codes_saved_and_continue(self, name: str) -> bytes:
        """Leave the backup codes page for where the person was going: "I have saved these codes", then "Continue"."""
        button = "form.saved button[type=submit]"
        assert self.page.locator(button).inner_text().strip() == self.t("Continue")
        self.page.check("#saved")
        return self._follow(button, name)

    def do_download_codes(self) -> str:
        """Click "Download codes" and read the file the browser saved."""
        link = self.page.locator("a[href='/account/security/backup-codes/download']")
        assert link.inner_text().strip() == self.t("Download codes")
        with self.page.expect_download() as info:
            link.click()
        download = info.value
        assert download.suggested_filename == "backup-codes.txt"
        saved = self.screens.folder / f"{self.lang}-backup-codes.txt"
        download.save_as(saved)
        return saved.read_text(encoding="utf-8")

    def do_regenerate_backup_codes(self, code: str, name: str = "regenerated") -> bytes:
        return self._submit("form[action='/account/security/backup-codes']", name, **{"regenerate-code": code})

    def do_disable(self, code: str, name: str = "disabled") -> bytes:
        return self._submit("form[action='/account/security/disable']", name, **{"disable-code": code})

    def do_sign_out(self) -> None:
        """From the account page: "Sign out" (a form, so no other site can sign the person out)."""
        self.do_open("/account", "account")
        button = self.page.locator("form[action='/logout'] button[type=submit]")
        assert button.inner_text().strip() == self.t("Sign out")
        with self.page.expect_navigation():
            button.click()
        self._arrived("signed-out")
        self.expect_heading("You are signed out")

    def do_switch_language(self, lang: str) -> None:
        """The footer's language links: the same page in the other language, remembered by a cookie."""
        self.lang = lang
        self._translations = load_translations(lang)
        self._english = english_patterns() if lang != "en" else []
        self._follow(f".languages a[hreflang='{lang}']", f"switched-to-{lang}")

    # -- expectations ---------------------------------------------------------------------------------

    def expect_at(self, path: str) -> None:
        assert self.path == path, f"expected {path}, at {self.page.url}"

    def expect_status(self, status: int) -> None:
        assert self.statuses[-1:] == [status], (self.statuses[-3:], self.page.url)

    def expect_heading(self, message: str) -> None:
        assert self.page.inner_text("h1").strip() == self.t(message)

    def expect_refused(self, beside: str = "") -> None:
        """The generic wrong-code message, with 400; inside the form `beside` when there are several forms,
        whose code field is then marked invalid and has the focus."""
        self.expect_status(400)
        assert self.page.inner_text(f"{beside} .error[role=alert]".strip()).strip() == self.t(
            "That code is not valid. Check it and try again."
        )
        if beside:
            field = self.page.locator(f"{beside} input[name=code]")
            assert field.get_attribute("aria-invalid") == "true"
            assert field.evaluate("el => el === document.activeElement")

    def expect_signed_in(self) -> None:
        self.do_open("/account", "account")
        self.expect_at("/account")

    def expect_setup_key_matches_qr(self, screenshot: bytes) -> str:
        """The QR code, read back from the screenshot, holds the otpauth URI of the key shown as text."""
        decoded = decode_qr(screenshot)
        assert len(decoded) == 1, f"expected one QR code in the screenshot, found {decoded}"
        uri = urlsplit(decoded[0])
        assert (uri.scheme, uri.netloc) == ("otpauth", "totp"), decoded[0]
        params = {k: v[0] for k, v in parse_qs(uri.query).items()}
        shown = self.page.inner_text("#totp-secret").replace(" ", "")
        assert params["secret"] == shown
        assert re.fullmatch(r"[A-Z2-7]{32}", shown)
        return shown

    def expect_qr_fits_phone(self) -> None:
        """At 360 px the QR code and the setup key stay inside the screen, and the QR code still reads."""
        self.page.set_viewport_size(PHONE)
        try:
            for selector in (".qr svg", "#totp-secret"):
                box = self.page.locator(selector).bounding_box()
                assert box is not None
                assert box["x"] >= 0, (selector, box)
                assert box["x"] + box["width"] <= PHONE["width"], (selector, box)
            assert len(decode_qr(self.page.screenshot(full_page=True))) == 1
        finally:
            self.page.set_viewport_size(DESKTOP)

    def expect_backup_codes(self) -> list[str]:
        codes = [c.strip() for c in self.page.locator(".backup-code").all_inner_texts()]
        assert len(codes) == 8, codes
        assert len(set(codes)) == 8
        return codes

    def expect_codes_left(self, count: int) -> None:
        text = self.page.inner_text("#codes-left")
        assert self._translations.ngettext(
            "You have %(count)s backup code left.", "You have %(count)s backup codes left.", count
        ) % {"count": count} == " ".join(text.split())

    def expect_security_status(self, *, enabled: bool, codes_left: int | None = None) -> None:
        status = self.page.inner_text("#mfa-status").strip()
        if enabled:
            assert status.startswith(self.t("On since %(date)s").split("%")[0].strip()), status
        else:
            assert status == self.t("Off")
        if codes_left is not None:
            expected = self._translations.ngettext(
                "%(count)s backup code left", "%(count)s backup codes left", codes_left
            ) % {"count": codes_left}
            assert " ".join(self.page.inner_text("#backup-codes-left").split()) == expected

    def expect_no_english(self, name: str) -> None:
        """No English sentence of the catalog in a page that should be Bokmål: text, title, labels."""
        texts = [self.page.inner_text("body"), self.page.title()]
        texts += self.page.eval_on_selector_all(
            "[aria-label], [title], [placeholder], [alt]",
            "els => els.flatMap(e => ['aria-label', 'title', 'placeholder', 'alt'].map(a => e.getAttribute(a) || ''))",
        )
        found = sorted({english for english, pattern in self._english for text in texts if pattern.search(text)})
        assert not found, f"{name} ({self.page.url}) shows English in {self.lang}: {found}"


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
