"""Email through SMTP (aiosmtplib), sent from the durable outbox as its second kind of message.

A request only writes the message into the outbox, in the transaction of the action that caused it, so it never
waits on the mail server and a mail-server outage or a restart loses nothing: any replica sends it later, with
back-off, once. The payload is sealed (AES-GCM): the links in it are secrets and the address is personal data.
Emails are rendered at delivery, in text and HTML, in the person's language, from idp/templates/email/.
"""

from __future__ import annotations

import json
import logging
import ssl
import uuid
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import aiosmtplib
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy.ext.asyncio import AsyncSession

from idp.auth.crypto import Sealer
from idp.i18n import DEFAULT, LOCALES, N_, translations
from idp.services.outbox import DeliveryFailed
from idp.store import outbox as outbox_store
from idp.template_cache import MemoryBytecodeCache

log = logging.getLogger(__name__)

KIND = "email"
TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates" / "email"

# Every email idp sends: its subject (translated at delivery) and the values its templates need.
SUBJECTS = {
    "verify_email": N_("Confirm your email address for %(site)s"),
    "signup_existing": N_("Someone tried to create an account with your address at %(site)s"),
    "password_reset": N_("Reset your password at %(site)s"),
    "password_changed": N_("Your password at %(site)s was changed"),
    "passkey_added": N_("A passkey was added to your account at %(site)s"),
    # Changing the sign-in address (idp.services.accounts).
    "email_change": N_("Confirm your new email address for %(site)s"),
    "email_change_taken": N_("Someone tried to move an account at %(site)s to your address"),
    # Security notices (idp.services.notices).
    "email_changed": N_("The email address of your account at %(site)s was changed"),
    "mfa_enabled": N_("Two-step verification is now on for your account at %(site)s"),
    "mfa_disabled": N_("Two-step verification was turned off for your account at %(site)s"),
    "mfa_reset": N_("Support turned off two-step verification for your account at %(site)s"),
    "backup_codes_regenerated": N_("New backup codes were made for your account at %(site)s"),
    "account_deleted": N_("Your account at %(site)s was deleted"),
}


@dataclass(frozen=True)
class SmtpTarget:
    """Where and how to send, parsed once from IDP_SMTP_URL."""

    hostname: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool

    @classmethod
    def parse(cls, url: str) -> SmtpTarget:
        parts = urlsplit(url)
        implicit_tls = parts.scheme == "smtps"
        return cls(
            hostname=parts.hostname or "localhost",
            port=parts.port or (465 if implicit_tls else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            use_tls=implicit_tls,
        )


# Its own cache: mail's environments escape only .html, so their compiled code differs from the pages'.
_MAIL = MemoryBytecodeCache()


def _environments() -> dict[str, Environment]:
    """One Jinja environment per language; HTML templates escape, text templates do not."""
    result = {}
    for locale in LOCALES:
        env = Environment(
            loader=FileSystemLoader(TEMPLATES_DIR),
            autoescape=select_autoescape(enabled_extensions=("html",), default=False),
            extensions=["jinja2.ext.i18n"],
            trim_blocks=True,
            lstrip_blocks=True,
            undefined=StrictUndefined,
            bytecode_cache=_MAIL,
        )
        # jinja2.ext.i18n adds this method to the Environment at run time; the stubs do not know it.
        env.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
        result[locale] = env
    return result


def describe(payload: dict[str, Any]) -> dict[str, Any]:
    """What the give-up audit entry may say: whose email and which one, never the address or a link."""
    return {"user_id": payload.get("user_id"), "template": payload.get("template")}


class Mailer:
    """Queues emails into the outbox and sends them from there."""

    def __init__(
        self,
        *,
        smtp_url: str,
        mail_from: str,
        site_name: str,
        issuer: str,
        sealer: Sealer,
        timeout: float,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.enabled = bool(smtp_url)
        self._target = SmtpTarget.parse(smtp_url) if smtp_url else None
        self._from = mail_from
        self._site_name = site_name
        self._issuer = issuer
        self._sealer = sealer
        self._timeout = timeout
        self._tls_context = tls_context
        self._envs = _environments()

    async def enqueue(
        self,
        session: AsyncSession,
        template: str,
        *,
        to: str,
        locale: str,
        now: datetime,
        user_id: str | None = None,
        values: dict[str, Any] | None = None,
    ) -> bool:
        """In the caller's transaction: queue one email (nothing when email is off); True when queued."""
        if not self.enabled:
            return False
        if template not in SUBJECTS:
            raise ValueError(f"unknown email template {template!r}")
        secret = json.dumps({"to": to, "values": values or {}}, separators=(",", ":"))
        message_id = str(uuid.uuid4())
        payload = {
            "user_id": user_id,
            "template": template,
            "locale": locale if locale in LOCALES else DEFAULT,
            "sealed": self._sealer.seal(secret.encode(), aad=message_id),
            "id": message_id,
        }
        row = {
            "kind": KIND,
            "dedupe_key": message_id,
            "payload": json.dumps(payload, separators=(",", ":")),
            "created_at": now,
            "next_attempt_at": now,
            "attempts": 0,
            "last_error": "",
        }
        await outbox_store.enqueue(session, [row])
        return True

    def render(self, template: str, locale: str, to: str, values: dict[str, Any]) -> EmailMessage:
        """The whole message, text and HTML, in `locale`."""
        env = self._envs.get(locale) or self._envs[DEFAULT]
        context = {"site_name": self._site_name, "issuer": self._issuer, "email": to, "lang": locale, **values}
        subject = translations(locale).gettext(SUBJECTS[template]) % {"site": self._site_name}
        message = EmailMessage()
        message["Subject"] = subject
        message["From"] = self._from
        message["To"] = to
        message["Date"] = format_datetime(datetime.now().astimezone())
        domain = parseaddr(self._from)[1].rpartition("@")[2] or "localhost"
        message["Message-ID"] = make_msgid(domain=domain)
        # Links in these emails are secrets: no mail client should prefetch or thread them with others.
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(env.get_template(f"{template}.txt").render(context))
        message.add_alternative(env.get_template(f"{template}.html").render(context), subtype="html")
        # After the parts are made: making them moves every Content-* header into the first part.
        message["Content-Language"] = locale
        return message

    async def deliver(self, payload: dict[str, Any]) -> None:
        """Send one queued email; DeliveryFailed (naming the failure, never the address or a link) otherwise."""
        if self._target is None:
            raise DeliveryFailed("email is off (IDP_SMTP_URL is empty)")
        try:
            secret = json.loads(self._sealer.open(str(payload["sealed"]), aad=str(payload["id"])))
        except Exception:
            raise DeliveryFailed("the message cannot be opened (was IDP_ENCRYPTION_KEY changed?)") from None
        message = self.render(
            str(payload["template"]), str(payload.get("locale", DEFAULT)), secret["to"], secret["values"]
        )
        target = self._target
        try:
            await aiosmtplib.send(
                message,
                hostname=target.hostname,
                port=target.port,
                username=target.username,
                password=target.password,
                use_tls=target.use_tls,
                # None: upgrade with STARTTLS when the server offers it.
                start_tls=None if not target.use_tls else False,
                timeout=self._timeout,
                tls_context=self._tls_context,
            )
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryFailed(f"the mail server answered {exc.code}") from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise DeliveryFailed(f"the mail server could not be reached ({type(exc).__name__})") from None
