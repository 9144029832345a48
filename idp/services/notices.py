"""Security notices by email (issue #13): a person hears of every change to how their account is protected.

Each notice is sent from the one service method where its change happens, in the same transaction, so the pages,
the support console, the admin API and the CLI all send it. To add one: a subject in `idp.services.mail.SUBJECTS`,
`<name>.txt` and `<name>.html` in idp/templates/email/ (ending with `{% include "_not_you.txt" %}` or `.html`),
and one `await notices.send(session, user, "<name>", now=now)` where the change is made.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from idp.services.mail import Mailer
from idp.store.models import User

# The notices, by template name; every one tells the person what to do if it was not them.
MFA_ENABLED = "mfa_enabled"
MFA_DISABLED = "mfa_disabled"
MFA_RESET = "mfa_reset"
BACKUP_CODES_REGENERATED = "backup_codes_regenerated"
PASSWORD_CHANGED = "password_changed"  # noqa: S105 - a template name
EMAIL_CHANGED = "email_changed"
ACCOUNT_DELETED = "account_deleted"
PASSKEY_ADDED = "passkey_added"


class Notices:
    """Queues security notices through the outbox, in the person's language (nothing when email is off)."""

    def __init__(self, mail: Mailer, *, issuer: str, support_url: str) -> None:
        self._mail = mail
        self._links = {
            "account_url": f"{issuer}/account",
            "forgot_url": f"{issuer}/password/forgot",
            "support_url": support_url,
        }

    async def send(
        self, session: AsyncSession, user: User, notice: str, *, now: datetime, to: str | None = None, **values: Any
    ) -> bool:
        """In the caller's transaction: queue `notice` to the person (or to `to`, an address they had)."""
        return await self._mail.enqueue(
            session,
            notice,
            to=to or user.email,
            locale=user.locale,
            now=now,
            user_id=user.id,
            values={**self._links, **values},
        )
