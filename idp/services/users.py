"""User accounts: validation of email, name and password, and creation with an argon2id hash."""

from __future__ import annotations

import builtins
import re
import unicodedata
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from idp.auth.passwords import MAX_PASSWORD_LENGTH, PasswordPool
from idp.clock import Clock
from idp.errors import InvalidInput, NotFound
from idp.services.audit import AuditLog
from idp.services.backchannel import enqueue_logouts
from idp.services.notices import ACCOUNT_DELETED, MFA_RESET, Notices
from idp.services.ratelimit import RateLimiter
from idp.store import audit as audit_store
from idp.store import grants as grants_store
from idp.store import mfa as mfa_store
from idp.store import outbox as outbox_store
from idp.store import passkeys as passkeys_store
from idp.store import roles as roles_store
from idp.store import sessions as sessions_store
from idp.store import users as store
from idp.store.db import Database
from idp.store.models import User

MAX_EMAIL_LENGTH = 320
# Staff roles (INTERFACE §5): `support` works the console's people pages; `admin` also clients, keys, tokens.
ROLES = ("support", "admin")
MAX_NAME_LENGTH = 200
MIN_PASSWORD_LENGTH = 8  # NIST SP 800-63B §5.1.1.2
# Audit details that may hold free text about a person (an operator's written reason): blanked when they go.
PERSONAL_AUDIT_DETAILS = ("reason", "note")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
# The compared form keeps one @ and a dotted domain; folding may lengthen the local part (İ is two characters).
_EMAIL_NORM = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Unicode categories that draw nothing or control layout: Cc control, Cf format (zero-width space, soft hyphen,
# bidi marks), Zl line and Zp paragraph separators. Cs (lone surrogates) cannot be stored as UTF-8 at all.
_INVISIBLE = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def normalize_email(email: str) -> str:
    """The form emails are compared and stored under: trimmed, NFKC, case-folded (Unicode's NFKC_Casefold).

    Fullwidth letters, the Kelvin sign, NFC/NFD pairs and case all meet in one form; the sign-in lookup, admin
    search, CLI and import use this one function so that look-alikes name one account.
    """
    folded = unicodedata.normalize("NFKC", email.strip()).casefold()
    # Case folding can leave a string that NFKC would still change (Unicode §3.13: NFKC_Casefold).
    return unicodedata.normalize("NFKC", folded)


def check_email(email: str) -> str:
    """Return the trimmed email, or raise InvalidInput saying what is wrong with it.

    Refused: invisible and control characters (Unicode Cc, Cf, Zl, Zp) and any whitespace, which would make
    look-alike addresses; and an address whose compared form breaks the size limits (folding can lengthen it).
    """
    email = email.strip()
    if not email:
        raise InvalidInput("email is required")
    if any(_invisible(c) for c in email):
        raise InvalidInput("email must not contain spaces, invisible or control characters")
    if len(email) > MAX_EMAIL_LENGTH or not _EMAIL.match(email):
        raise InvalidInput("email is not a valid address")
    normalized = normalize_email(email)
    if any(_invisible(c) for c in normalized) or not _EMAIL_NORM.match(normalized):
        raise InvalidInput("email is not a valid address")
    if len(normalized) > MAX_EMAIL_LENGTH:
        raise InvalidInput(f"email must have at most {MAX_EMAIL_LENGTH} characters once normalised")
    return email


def _invisible(char: str) -> bool:
    return char.isspace() or unicodedata.category(char) in _INVISIBLE


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(f"password must have at most {MAX_PASSWORD_LENGTH} characters")


def check_name(name: str) -> str:
    name = name.strip()
    if len(name) > MAX_NAME_LENGTH or any(ord(c) < 32 for c in name):
        raise InvalidInput(f"name must be at most {MAX_NAME_LENGTH} printable characters")
    return name


async def _find(session: AsyncSession, user_id: str, *, lock: bool = False) -> User:
    """The person, or NotFound; with `lock`, their row is held first (`store.lock_person`)."""
    if len(user_id) > 36:
        user = None
    else:
        user = await (store.lock_person if lock else store.find_user)(session, user_id)
    if user is None:
        raise NotFound("no user with this id")
    return user


async def end_sessions_and_tokens(
    session: AsyncSession, user_id: str, now: datetime, *, keep: str | None = None
) -> dict[str, Any]:
    """Sign the person out everywhere but the session `keep` (an id hash): sessions deleted, unredeemed
    authorization codes deleted, access and refresh tokens revoked (INTERFACE §3). Returns counts for the audit.

    Every event that must end a person's grants goes through here: operator revoke, MFA reset, disabling or
    deleting the account, and turning two-step verification on or off. Each ended session's clients get a logout token
    (Back-Channel Logout), queued in this transaction.
    """
    # Sessions first, while their codes and tokens still say which clients were signed in through them.
    ended = await sessions_store.delete_other_sessions(session, user_id, keep)
    await enqueue_logouts(session, ended, now)
    # Codes before tokens: a redemption racing this transaction either commits before the token UPDATE below
    # reads (its tokens are revoked) or finds its code gone.
    codes = await grants_store.delete_unredeemed_codes_of_user(session, user_id)
    revoked = await grants_store.revoke_tokens_of_user(session, user_id, now)
    return {"sessions_ended": len(ended), "revoked": revoked, "unredeemed_ended": codes}


async def erase_person(
    session: AsyncSession, user: User, now: datetime, *, limiter: RateLimiter | None = None
) -> dict[str, Any]:
    """Delete an account and what is kept about the person, in the caller's transaction (GDPR art. 17).

    Their sessions end with back-channel logouts queued (those tokens name only `sub` and `sid`), every token is
    revoked before its row goes, emails still queued for them are dropped, attempt counters are cleared, and their
    audit events keep only the user id and what happened. Everything else goes with the user row (foreign keys
    cascade), so `sub` is then unknown to every endpoint. Returns counts for the audit."""
    ended = await end_sessions_and_tokens(session, user.id, now)
    dropped = await outbox_store.delete_emails_of_user(session, user.id)
    if limiter is not None:
        await limiter.unlock(session, user)
    await audit_store.forget_person(session, user.id, PERSONAL_AUDIT_DETAILS)
    await store.delete_user(session, user.id)
    return {**ended, "emails_dropped": dropped}


class UserService:
    """Create, find, change and remove people; operator actions are audited with the operator as actor."""

    def __init__(
        self,
        db: Database,
        passwords: PasswordPool,
        clock: Clock,
        audit: AuditLog | None = None,
        *,
        notices: Notices | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self._db = db
        self._passwords = passwords
        self._clock = clock
        self._audit = audit or AuditLog(clock)
        self._notices = notices
        self._limiter = limiter

    async def create(
        self, email: str, *, name: str = "", password: str | None = None, actor: str = "", client_ip: str = ""
    ) -> User:
        """Create a user; InvalidInput for a bad field, Conflict for a taken email."""
        email = check_email(email)
        name = check_name(name)
        password_hash = None
        if password is not None:
            check_password(password)
            password_hash = await self._passwords.hash(password)
        now = self._clock.now()
        user = User(
            id=str(uuid.uuid4()),
            email=email,
            email_norm=normalize_email(email),
            name=name,
            password_hash=password_hash,
            disabled=False,
            created_at=now,
            updated_at=now,
        )
        async with self._db.transaction() as session:
            await store.insert_user(session, user)
            if actor:
                await self._audit.record(
                    session, "admin.user_created", user_id=user.id, actor=actor, client_ip=client_ip
                )
        return user

    async def load(self, user_id: str) -> User:
        async with self._db.transaction() as session:
            return await _find(session, user_id)

    async def list(self, *, email: str | None, after: str | None, limit: int) -> list[User]:
        email_norm = normalize_email(email) if email else None
        if email_norm is not None and len(email_norm) > MAX_EMAIL_LENGTH:
            return []  # longer than any stored address (and than PostgreSQL's column)
        async with self._db.transaction() as session:
            return list(await store.list_users(session, email_norm=email_norm, after_id=after, limit=limit))

    async def update(
        self, user_id: str, *, name: str | None, disabled: bool | None, actor: str, client_ip: str
    ) -> User:
        """Change the name or the disabled flag; disabling ends the person's sessions and tokens."""
        values: dict[str, object] = {}
        if name is not None:
            values["name"] = check_name(name)
        if disabled is not None:
            values["disabled"] = disabled
        now = self._clock.now()
        async with self._db.transaction() as session:
            user = await _find(session, user_id, lock=True)
            if values:
                values["updated_at"] = now
                await store.update_user(session, user_id, values)
            ended = await end_sessions_and_tokens(session, user_id, now) if disabled else {}
            await self._audit.record(
                session,
                "admin.user_updated",
                user_id=user_id,
                actor=actor,
                client_ip=client_ip,
                fields=sorted(k for k in values if k != "updated_at"),
                **(ended or {"sessions_ended": 0, "revoked": 0}),
            )
            await session.refresh(user)
        return user

    async def delete(self, user_id: str, *, actor: str, client_ip: str) -> None:
        """An operator deletes the account: the same erasure as the person's own (`erase_person`), and a notice."""
        now = self._clock.now()
        async with self._db.transaction() as session:
            user = await _find(session, user_id, lock=True)
            ended = await erase_person(session, user, now, limiter=self._limiter)
            if self._notices is not None:
                await self._notices.send(session, user, ACCOUNT_DELETED, now=now)
            await self._audit.record(
                session, "admin.user_deleted", user_id=user_id, actor=actor, client_ip=client_ip, **ended
            )

    async def reset_mfa(self, user_id: str, *, reason: str, actor: str, client_ip: str) -> User:
        """Operator-assisted recovery: remove the authenticator and backup codes, end every session and token."""
        reason = reason.strip()
        if not reason:
            raise InvalidInput("a reason is required")
        now = self._clock.now()
        async with self._db.transaction() as session:
            user = await _find(session, user_id, lock=True)
            was_on = await mfa_store.has_confirmed_totp(session, user_id)
            await mfa_store.delete_totp(session, user_id)
            await mfa_store.delete_backup_codes(session, user_id)
            passkeys_removed = await passkeys_store.delete_all_of_user(session, user_id)
            ended = await end_sessions_and_tokens(session, user_id, now)
            await self._audit.record(
                session,
                "admin.mfa_reset",
                user_id=user_id,
                actor=actor,
                client_ip=client_ip,
                reason=reason[:500],
                passkeys_removed=passkeys_removed,
                **ended,
            )
            # Told only when something was removed: a reset of an account without it changes nothing for them.
            if self._notices is not None and was_on:
                await self._notices.send(session, user, MFA_RESET, now=now)
        return user

    async def revoke_sessions(self, user_id: str, *, actor: str, client_ip: str) -> None:
        """End every session, unredeemed code and refresh/access token of the person."""
        now = self._clock.now()
        async with self._db.transaction() as session:
            await _find(session, user_id, lock=True)
            ended = await end_sessions_and_tokens(session, user_id, now)
            await self._audit.record(
                session, "admin.sessions_revoked", user_id=user_id, actor=actor, client_ip=client_ip, **ended
            )

    async def search(self, email_prefix: str, *, limit: int) -> builtins.list[User]:
        """People whose email starts with `email_prefix` (compared form), by email; none for an empty prefix."""
        prefix = normalize_email(email_prefix)
        if not prefix or len(prefix) > MAX_EMAIL_LENGTH:
            return []
        async with self._db.transaction() as session:
            return list(await store.search_users_by_email_prefix(session, prefix, limit=limit))

    # -- staff roles ---------------------------------------------------------------------------------------

    async def roles(self, user_id: str) -> builtins.list[str]:
        """The person's staff roles, sorted (none for an unknown id)."""
        async with self._db.transaction() as session:
            return await roles_store.roles_of(session, user_id) if len(user_id) <= 36 else []

    async def roles_of_users(self, user_ids: builtins.list[str]) -> dict[str, builtins.list[str]]:
        async with self._db.transaction() as session:
            return await roles_store.roles_of_users(session, user_ids)

    async def set_role(
        self, user_id: str, role: str, held: bool, *, actor: str, client_ip: str = ""
    ) -> builtins.list[str]:
        """Grant (`held`) or revoke `role`; audited when it changes. Returns the roles now held.

        InvalidInput for a role that is not one of ROLES, NotFound for an unknown person."""
        if role not in ROLES:
            raise InvalidInput(f"role must be one of: {', '.join(ROLES)}")
        async with self._db.transaction() as session:
            await _find(session, user_id)
            if held:
                changed = await roles_store.insert_role(session, user_id, role, self._clock.now())
            else:
                changed = await roles_store.delete_role(session, user_id, role)
            if changed:
                await self._audit.record(
                    session,
                    "admin.role_granted" if held else "admin.role_revoked",
                    user_id=user_id,
                    actor=actor,
                    client_ip=client_ip,
                    role=role,
                )
            return await roles_store.roles_of(session, user_id)

    async def set_roles(
        self, user_id: str, roles: builtins.list[str], *, actor: str, client_ip: str = ""
    ) -> builtins.list[str]:
        """Make the person's roles exactly `roles` (the admin API's PATCH); each change audited."""
        unknown = sorted(set(roles) - set(ROLES))
        if unknown:
            raise InvalidInput(f"role must be one of: {', '.join(ROLES)}")
        held = await self.roles(user_id)
        for role in ROLES:
            if (role in roles) != (role in held):
                held = await self.set_role(user_id, role, role in roles, actor=actor, client_ip=client_ip)
        if not held and not roles:
            await self.load(user_id)  # NotFound for an unknown id even when nothing changes
        return held
