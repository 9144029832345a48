"""Email through the durable outbox to a real SMTP server (aiosmtpd): text and HTML in the person's language,
sealed at rest, and nothing lost while the mail server is down."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from sqlalchemy import select

from idp.clock import FrozenClock
from idp.config import Settings
from idp.services.mail import SUBJECTS
from idp.store.models import OutboxMessage
from tests.conftest import Running
from tests.http.account.conftest import deliver_mail
from tests.support.ports import free_port
from tests.support.smtp import SmtpServer, html_of, links_in, smtp_server, text_of

StartApp = Callable[[Settings], Coroutine[Any, Any, Running]]
LINK = "http://testserver/password/reset?token=SECRET-TOKEN-VALUE"
VALUES = {
    "verify_email": {"link": LINK},
    "signup_existing": {"login_url": "http://testserver/login", "forgot_url": "http://testserver/password/forgot"},
    "password_reset": {"link": LINK},
    "password_changed": {"forgot_url": "http://testserver/password/forgot", "support_url": "mailto:help@example.com"},
    "passkey_added": {"name": "Phone", "security_url": "http://testserver/account/security/passkeys"},
    "email_change": {"link": "http://testserver/account/email/confirm?token=SECRET-TOKEN-VALUE"},
    "email_change_taken": {"login_url": "http://testserver/login", "forgot_url": "http://testserver/password/forgot"},
}
# Security notices (idp.services.notices) all get these links.
NOTICE_LINKS = {
    "account_url": "http://testserver/account",
    "forgot_url": "http://testserver/password/forgot",
    "support_url": "mailto:help@example.com",
}
# The links each notice shows (an email changed or an account deleted cannot be mended by a password reset).
NOTICES = {
    "mfa_enabled": ("account_url", "forgot_url", "support_url"),
    "mfa_disabled": ("account_url", "forgot_url", "support_url"),
    "backup_codes_regenerated": ("account_url", "forgot_url", "support_url"),
    "mfa_reset": ("account_url", "support_url"),
    "email_changed": ("support_url",),
    "account_deleted": ("support_url",),
}
for _notice, _shown in NOTICES.items():
    VALUES[_notice] = {**NOTICE_LINKS, "new_email": "new@example.com"} if _notice == "email_changed" else NOTICE_LINKS
SHOWN = {name: [VALUES[name][k] for k in keys] for name, keys in NOTICES.items()}


async def queue(running: Running, template: str, to: str, locale: str) -> None:
    idp = running.idp
    async with idp.db.transaction() as session:
        assert await idp.mail.enqueue(
            session, template, to=to, locale=locale, now=idp.clock.now(), user_id=None, values=VALUES[template]
        )


@pytest.mark.parametrize("template", sorted(SUBJECTS))
@pytest.mark.parametrize("locale", ["en", "nb"])
async def test_every_email_in_both_languages(
    start_app: StartApp, mail_settings: Callable[..., Settings], smtp: SmtpServer, template: str, locale: str
) -> None:
    running = await start_app(mail_settings(mail_from="Jobbsøk ID <login@jobb.example>"))
    await queue(running, template, "person@example.com", locale)
    assert await deliver_mail(running) == 1
    [message] = smtp.inbox.to("person@example.com")
    assert message["From"] == "Jobbsøk ID <login@jobb.example>"
    assert "Jobbsøk ID" in message["Subject"]
    assert message["Content-Language"] == locale
    text, html = text_of(message), html_of(message)
    assert "Jobbsøk ID" in text
    assert "Jobbsøk ID" in html
    for url in SHOWN.get(template, VALUES[template].values()):
        assert url in text
        assert url in html
    # The footer says the same thing in the chosen language.
    footer = {"en": "This email was sent by", "nb": "Denne e-posten ble sendt av"}[locale]
    assert footer in text
    assert footer in html
    assert "{{" not in text + html
    assert "%(" not in text + html


async def test_the_outbox_row_holds_neither_the_link_nor_the_address(
    start_app: StartApp, mail_settings: Callable[..., Settings]
) -> None:
    running = await start_app(mail_settings())
    await queue(running, "password_reset", "person@example.com", "en")
    async with running.idp.db.transaction() as session:
        [row] = (await session.execute(select(OutboxMessage))).scalars().all()
    assert row.kind == "email"
    assert "SECRET-TOKEN-VALUE" not in row.payload
    assert "person@example.com" not in row.payload


async def test_mail_server_down_then_back(
    start_app: StartApp,
    make_settings: Callable[..., Settings],
    clock: FrozenClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The action succeeds while the server is down; the email arrives once it is back."""
    port = free_port()
    with smtp_server(started=False) as server:
        server.port = port
        running = await start_app(make_settings(smtp_url=server.url, outbox_poll_seconds=300))
        await queue(running, "password_reset", "person@example.com", "en")
        with caplog.at_level(logging.DEBUG):
            assert await deliver_mail(running) == 1  # tried, and failed: nobody listens
        assert server.inbox.messages == []
        async with running.idp.db.transaction() as session:
            [row] = (await session.execute(select(OutboxMessage))).scalars().all()
        assert row.attempts == 1
        assert "could not be reached" in row.last_error
        server.start()
        assert await deliver_mail(running) == 0  # not due yet: back-off
        clock.advance(10)
        assert await deliver_mail(running) == 1
        [message] = server.inbox.to("person@example.com")
        assert LINK in links_in(message)
        async with running.idp.db.transaction() as session:
            assert (await session.execute(select(OutboxMessage))).scalars().all() == []
    assert "SECRET-TOKEN-VALUE" not in caplog.text


async def test_no_smtp_url_means_no_email(
    start_app: StartApp, make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        running = await start_app(make_settings())
    assert "IDP_SMTP_URL is empty" in caplog.text
    async with running.idp.db.transaction() as session:
        assert not await running.idp.mail.enqueue(
            session, "password_reset", to="a@example.com", locale="en", now=running.idp.clock.now()
        )


def test_smtp_url_is_checked_without_repeating_it(make_settings: Callable[..., Settings]) -> None:
    from idp.config import SettingsError, load_settings

    with pytest.raises(SettingsError) as info:
        load_settings(_env_file=None, smtp_url="http://user:hunter2@mail.example")
    assert "IDP_SMTP_URL" in str(info.value)
    assert "hunter2" not in str(info.value)
