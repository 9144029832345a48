"""Security notices by email (issue #13), each sent by the service where its change happens, so every path sends
it: two-step verification on, off and reset by an operator, new backup codes, password and email changed, account
deleted; in the person's language, text and HTML, through a real SMTP server."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import pytest

from idp.clock import FrozenClock
from idp.config import Settings
from idp.i18n import translations
from idp.services.mail import SUBJECTS
from idp.store import users as users_store
from tests.conftest import Running
from tests.http.account.conftest import deliver_mail
from tests.support.admin import API, admin_client
from tests.support.mfa import enroll, totp_code
from tests.support.pages import PASSWORD, csrf_from, make_user, submit_login
from tests.support.smtp import SmtpServer, html_of, text_of

StartApp = Callable[[Settings], Coroutine[Any, Any, Running]]
SITE = "Jobbsøk ID"
OLD = "person@example.com"
NEW = "moved@example.com"
NEW_PASSWORD = "violet kettle drums at midnight"
# A phrase of each notice's body, per language: the body is translated, not only the subject.
BODY = {
    "en": {"mfa_enabled": "was turned on", "email_changed": NEW, "account_deleted": "was deleted"},
    "nb": {"mfa_enabled": "ble slått på", "email_changed": NEW, "account_deleted": "er slettet"},
}


def subject(template: str, locale: str) -> str:
    return translations(locale).gettext(SUBJECTS[template]) % {"site": SITE}


async def post_form(browser: httpx.AsyncClient, page: str, action: str, **data: str) -> httpx.Response:
    form = await browser.get(page)
    return await browser.post(action, data={**data, "csrf_token": csrf_from(form.text)})


async def arrived(running: Running, smtp: SmtpServer, to: str, template: str, locale: str) -> str:
    """The one new email to `to`: its subject is `template`'s in `locale`, with text and HTML; returns the text."""
    before = len(smtp.inbox.to(to))
    assert await deliver_mail(running) >= 1
    messages = smtp.inbox.to(to)[before:]
    # Long subjects with "ø" are folded into encoded words; unfolding may leave a double space.
    assert [" ".join(m["Subject"].split()) for m in messages] == [subject(template, locale)]
    [message] = messages
    assert message["Content-Language"] == locale
    assert SITE in html_of(message)
    text = text_of(message)
    if template in BODY[locale]:
        assert BODY[locale][template] in text
    return text


@pytest.mark.parametrize("locale", ["en", "nb"])
async def test_every_security_notice_arrives_in_the_persons_language(
    start_app: StartApp, mail_settings: Callable[..., Settings], smtp: SmtpServer, clock: FrozenClock, locale: str
) -> None:
    running = await start_app(mail_settings(support_url="https://help.example.com"))
    person = await make_user(running.idp, OLD)
    async with running.idp.db.transaction() as session:
        await users_store.update_user(session, person.id, {"locale": locale})
    if locale == "nb":
        assert subject("mfa_enabled", "nb") != subject("mfa_enabled", "en")

    async with running.client() as browser:
        assert (await submit_login(browser, OLD, PASSWORD)).status_code == 303
        secret, _codes = await enroll(browser, clock.now())
        text = await arrived(running, smtp, OLD, "mfa_enabled", locale)
        assert "http://testserver/password/forgot" in text

        clock.advance(31)
        done = await post_form(
            browser, "/account/security", "/account/security/backup-codes", code=totp_code(secret, clock.now())
        )
        # The new codes are shown by Post/Redirect/Get.
        assert (done.status_code, done.headers["location"]) == (303, "/account/security/backup-codes?done=regenerated")
        await arrived(running, smtp, OLD, "backup_codes_regenerated", locale)

        clock.advance(31)
        done = await post_form(
            browser, "/account/security", "/account/security/disable", code=totp_code(secret, clock.now())
        )
        assert done.status_code == 303, done.text
        await arrived(running, smtp, OLD, "mfa_disabled", locale)

        await enroll(browser, clock.now())
        await arrived(running, smtp, OLD, "mfa_enabled", locale)

    async with await admin_client(running) as admin:
        reset = await admin.post(f"{API}/users/{person.id}/mfa/reset", json={"reason": "lost phone"})
        assert reset.status_code == 200
        await arrived(running, smtp, OLD, "mfa_reset", locale)
        # Nothing left to remove: nothing to tell.
        assert (await admin.post(f"{API}/users/{person.id}/mfa/reset", json={"reason": "again"})).status_code == 200
        assert await deliver_mail(running) == 0

    async with running.client() as browser:
        # Emails asked for on a page go out in the page's language (and it becomes the person's).
        browser.headers["Accept-Language"] = locale
        assert (await submit_login(browser, OLD, PASSWORD)).status_code == 303
        changed = await post_form(
            browser, "/account/password", "/account/password", current_password=PASSWORD, password=NEW_PASSWORD
        )
        assert changed.status_code == 200
        await arrived(running, smtp, OLD, "password_changed", locale)

        asked = await post_form(browser, "/account/email", "/account/email", email=NEW, password=NEW_PASSWORD)
        assert asked.status_code == 200
        await arrived(running, smtp, NEW, "email_change", locale)
        [link] = [m for m in smtp.inbox.to(NEW)]
        url = next(u for u in text_of(link).split() if "/account/email/confirm?token=" in u)
        confirm = await browser.get(url.removeprefix("http://testserver"))
        token = url.split("token=", 1)[1]
        used = await browser.post(
            "/account/email/confirm", data={"token": token, "csrf_token": csrf_from(confirm.text)}
        )
        assert used.status_code == 200
        await arrived(running, smtp, OLD, "email_changed", locale)

        deleted = await post_form(browser, "/account/delete", "/account/delete", password=NEW_PASSWORD)
        assert deleted.status_code == 200
        await arrived(running, smtp, NEW, "account_deleted", locale)
