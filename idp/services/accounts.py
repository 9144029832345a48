"""Accounts people run themselves (issue #13): sign-up, email verification and the forgotten password.

Every answer that could tell whether an address has an account is the same either way; what differs goes by
email to the address's owner. Links are single use, short-lived and stored as SHA-256; a reset never bypasses
the second factor, and afterwards every session and token of the person ends.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

from sqlalchemy.ext.asyncio import AsyncSession
from zxcvbn import zxcvbn

from idp.auth.passwords import MAX_PASSWORD_LENGTH, PasswordPool
from idp.auth.tokens import new_opaque, sha256_hex
from idp.clock import Clock
from idp.config import Settings
from idp.errors import Conflict, DomainError, InvalidCredentials, InvalidInput, NotFound
from idp.i18n import N_
from idp.security import safe_next
from idp.services.audit import AuditLog
from idp.services.mail import Mailer
from idp.services.mfa import MfaService
from idp.services.ratelimit import Limit, RateLimiter, address_key
from idp.services.sessions import ActiveSession
from idp.services.users import (
    MAX_EMAIL_LENGTH,
    MIN_PASSWORD_LENGTH,
    check_email,
    check_name,
    end_sessions_and_tokens,
    normalize_email,
)
from idp.store import account_tokens as store
from idp.store import clients as clients_store
from idp.store import mfa as mfa_store
from idp.store import users as users_store
from idp.store.db import Database
from idp.store.models import AccountToken, Client, User

VERIFY = "verify_email"
RESET = "reset_password"
LIFETIMES = {VERIFY: timedelta(hours=24), RESET: timedelta(minutes=30)}
# Links are kept this long after they expire, so the "send again" limits can still count them.
KEEP_EXPIRED = timedelta(days=1)
# Emails one address may cause within the limiter's window (sign-up, send again, forgotten password), and
# requests one client address may make: enough for a person, too few to mail-bomb anyone.
EMAILS_PER_ADDRESS = 3
REQUESTS_PER_CLIENT = 30
# zxcvbn scores 0..4; below this the password falls to an online guessing attack (about 10^6 guesses).
MIN_STRENGTH = 2
# INTERFACE: a new password has at most 128 characters (sign-in still accepts the longer ones set before).
MAX_NEW_PASSWORD = 128
# zxcvbn refuses longer input (its run time grows with the length); what lies beyond adds strength anyway.
STRENGTH_CHECKED_CHARS = 72  # the most zxcvbn takes

# The reasons a new password is refused, shown on the page (translated there).
PASSWORD_TOO_SHORT = N_("Choose a password of at least %(min)s characters.")
PASSWORD_TOO_LONG = N_("Choose a password of at most %(max)s characters.")
PASSWORD_HAS_EMAIL = N_("Choose a password that does not contain your email address.")
PASSWORD_TOO_COMMON = N_("This password is too common or too easy to guess. Try a few unrelated words together.")


class WeakPassword(InvalidInput):
    """The new password breaks the policy; `message` is the translatable reason, `values` fill it in."""

    def __init__(self, message: str, **values: object) -> None:
        super().__init__("the password does not meet the policy")
        self.message = message
        self.values = values


class LinkInvalid(DomainError):
    """The link is unknown, used or expired (one answer for all three)."""


class CodeRequired(DomainError):
    """The account has two-step verification: a code is needed before the new password is taken."""


@dataclass(frozen=True)
class ResetLink:
    """A reset link still valid, and what its page needs to know."""

    user: User
    needs_code: bool


def check_new_password(password: str, email: str) -> None:
    """NIST SP 800-63B §5.1.1.2: 8..128 characters, not containing the email, not common (zxcvbn)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(PASSWORD_TOO_SHORT, min=MIN_PASSWORD_LENGTH)
    if len(password) > MAX_NEW_PASSWORD:
        raise WeakPassword(PASSWORD_TOO_LONG, max=MAX_NEW_PASSWORD)
    folded = password.casefold()
    email_norm = normalize_email(email)
    local = email_norm.partition("@")[0]
    if email_norm in folded or (len(local) >= 4 and local in folded):
        raise WeakPassword(PASSWORD_HAS_EMAIL)
    result = zxcvbn(password[:STRENGTH_CHECKED_CHARS], user_inputs=[email_norm, local])
    if result["score"] < MIN_STRENGTH:
        raise WeakPassword(PASSWORD_TOO_COMMON)


class AccountService:
    """Sign-up, verification and password reset; email goes out through the outbox in the same transaction."""

    def __init__(
        self,
        db: Database,
        passwords: PasswordPool,
        clock: Clock,
        audit: AuditLog,
        limiter: RateLimiter,
        mfa: MfaService,
        mail: Mailer,
        settings: Settings,
    ) -> None:
        self._db = db
        self._passwords = passwords
        self._clock = clock
        self._audit = audit
        self._limiter = limiter
        self._mfa = mfa
        self._mail = mail
        self._issuer = settings.issuer
        self._support_url = settings.support_url
        self._signup = settings.signup

    @property
    def enabled(self) -> bool:
        """Sign-up, verification and reset need email (INTERFACE §2)."""
        return self._mail.enabled

    # -- links --------------------------------------------------------------------------------------------

    async def _new_link(self, session: AsyncSession, user: User, purpose: str, *, next_url: str = "") -> str:
        token = new_opaque(32)
        now = self._clock.now()
        await store.insert(
            session,
            AccountToken(
                token_hash=sha256_hex(token),
                purpose=purpose,
                user_id=user.id,
                email_norm=user.email_norm,
                next_url=next_url,
                created_at=now,
                expires_at=now + LIFETIMES[purpose],
            ),
        )
        path = "/verify-email" if purpose == VERIFY else "/password/reset"
        return f"{self._issuer}{path}?{urlencode({'token': token})}"

    def _urls(self) -> dict[str, str]:
        return {
            "login_url": f"{self._issuer}/login",
            "forgot_url": f"{self._issuer}/password/forgot",
            "support_url": self._support_url,
        }

    async def _limit_emails(self, session: AsyncSession, email_norm: str, client_ip: str, action: str) -> None:
        """RateLimited when this address or this client has asked for too many emails lately; else counted.

        Keyed by what was typed, whether or not it has an account, so a refusal tells nothing either."""
        limits = [
            Limit(f"mail:{action}:acct:" + sha256_hex(email_norm)[:40], EMAILS_PER_ADDRESS, "account"),
            Limit(f"mail:{action}:addr:" + address_key(client_ip), REQUESTS_PER_CLIENT, "address"),
        ]
        await self._limiter.check(session, limits)
        await self._limiter.settle(session, await self._limiter.record_failure(session, limits))

    # -- forgotten password ------------------------------------------------------------------------------

    async def request_reset(self, email: str, *, locale: str, client_ip: str, next_url: str = "") -> None:
        """Send a reset link if the address has an account; the caller answers the same either way."""
        email_norm = normalize_email(email)[:MAX_EMAIL_LENGTH]
        async with self._db.transaction() as session:
            await self._limit_emails(session, email_norm, client_ip, "reset")
            user = await users_store.find_user_by_email(session, email_norm) if email_norm else None
            if user is None or user.disabled:
                return
            await self._send_reset(session, user, locale=locale, next_url=next_url)
            await users_store.update_user(session, user.id, {"locale": locale})
            await self._audit.record(session, "password.reset_requested", user_id=user.id, client_ip=client_ip)

    async def _send_reset(self, session: AsyncSession, user: User, *, locale: str, next_url: str = "") -> str:
        link = await self._new_link(session, user, RESET, next_url=safe_next(next_url, default=""))
        await self._mail.enqueue(
            session,
            "password_reset",
            to=user.email,
            locale=locale,
            now=self._clock.now(),
            user_id=user.id,
            values={"link": link},
        )
        return link

    async def reset_link_for_support(self, user_id: str, *, actor: str, client_ip: str = "", send: bool) -> str:
        """A reset link for an operator (`idp users reset-link`) or, with `send`, emailed to the person."""
        async with self._db.transaction() as session:
            user = await users_store.find_user(session, user_id) if len(user_id) <= 36 else None
            if user is None:
                raise NotFound("no user with this id")
            if send:
                if not self.enabled:
                    raise Conflict("email is off (IDP_SMTP_URL is empty): use `idp users reset-link` instead")
                link = await self._send_reset(session, user, locale=user.locale)
            else:
                link = await self._new_link(session, user, RESET)
            await self._audit.record(
                session, "admin.password_reset_link", user_id=user.id, actor=actor, client_ip=client_ip, emailed=send
            )
        return link

    async def check_reset_link(self, token: str) -> ResetLink:
        """The person a live reset link belongs to; LinkInvalid otherwise."""
        if not token or len(token) > 100:
            raise LinkInvalid("malformed")
        async with self._db.transaction() as session:
            row = await store.find_live(session, sha256_hex(token), RESET, self._clock.now())
            user = await users_store.find_user(session, row.user_id) if row else None
            if row is None or user is None or user.disabled or user.email_norm != row.email_norm:
                raise LinkInvalid("unknown, used or expired")
            needs_code = await mfa_store.has_second_factor(session, user.id)
        return ResetLink(user=user, needs_code=needs_code)

    async def reset_password(self, token: str, password: str, code: str, *, client_ip: str) -> str:
        """Set a new password through a reset link; returns where to go next (the job board, or "").

        LinkInvalid, WeakPassword, CodeRequired, InvalidCode or RateLimited; nothing changes on any of them."""
        link = await self.check_reset_link(token)
        user = link.user
        check_new_password(password, user.email)
        if link.needs_code:
            if not code.strip():
                raise CodeRequired("two-step verification is on")
            # Counts against the account's attempt limit like any wrong code at sign-in.
            await self._mfa.verify_any(user, code, client_ip=client_ip)
        password_hash = await self._passwords.hash(password)
        now = self._clock.now()
        async with self._db.transaction() as session:
            row = await store.consume(session, sha256_hex(token), RESET, now)
            if row is None or row.user_id != user.id:
                raise LinkInvalid("used meanwhile")
            # The link reached the person's mailbox: that verifies the address as well as a verification link would.
            await users_store.set_password_hash(session, user.id, password_hash, now, email_verified=True)
            await store.use_all_of_user(session, user.id, RESET, now)
            ended = await end_sessions_and_tokens(session, user.id, now)
            cleared = await self._limiter.unlock(session, user)
            await self._mail.enqueue(
                session,
                "password_changed",
                to=user.email,
                locale=user.locale,
                now=now,
                user_id=user.id,
                values={"forgot_url": self._urls()["forgot_url"], "support_url": self._support_url},
            )
            await self._audit.record(
                session, "password.reset", user_id=user.id, client_ip=client_ip, limits_cleared=cleared, **ended
            )
        return row.next_url

    # -- changing the password while signed in ------------------------------------------------------------

    async def change_password(
        self, active: ActiveSession, current: str, new: str, *, client_ip: str, device: str | None = None
    ) -> None:
        """The current password is required; the person's other sessions and every token end, a notice goes out.

        InvalidCredentials (a wrong current password, counted like a wrong sign-in), WeakPassword, RateLimited."""
        user = active.user
        async with self._db.transaction() as session:
            limits = await self._limiter.sign_in_limits(session, user.email_norm, user, client_ip, device)
            await self._limiter.check(session, limits)
        if not await self._passwords.verify(user.password_hash, current[:MAX_PASSWORD_LENGTH]):
            async with self._db.transaction() as session:
                await self._limiter.settle(session, await self._limiter.record_failure(session, limits))
                await self._audit.record(
                    session, "password.change_failed", user_id=user.id, client_ip=client_ip, outcome="failure"
                )
            raise InvalidCredentials("wrong current password")
        check_new_password(new, user.email)
        password_hash = await self._passwords.hash(new)
        now = self._clock.now()
        async with self._db.transaction() as session:
            await users_store.set_password_hash(session, user.id, password_hash, now)
            await store.use_all_of_user(session, user.id, RESET, now)
            ended = await end_sessions_and_tokens(session, user.id, now, keep=active.id_hash)
            await self._mail.enqueue(
                session,
                "password_changed",
                to=user.email,
                locale=user.locale,
                now=now,
                user_id=user.id,
                values={"forgot_url": self._urls()["forgot_url"], "support_url": self._support_url},
            )
            await self._audit.record(session, "password.changed", user_id=user.id, client_ip=client_ip, **ended)

    # -- sign-up and verification -------------------------------------------------------------------------

    async def signup_client(self, next_url: str) -> Client | None:
        """The client whose authorization request the person came from (the `next` of /authorize), if any."""
        parts = urlsplit(next_url)
        if parts.path != "/authorize":
            return None
        client_id = (parse_qs(parts.query).get("client_id") or [""])[0]
        if not client_id or len(client_id) > 64:
            return None
        async with self._db.transaction() as session:
            return await clients_store.find_client(session, client_id)

    async def signup_allowed(self, next_url: str) -> bool:
        """IDP_SIGNUP: open, closed, or only when arriving from a client registered with --allow-signup."""
        if not self.enabled or self._signup == "closed":
            return False
        if self._signup == "open":
            return True
        client = await self.signup_client(next_url)
        return client is not None and client.allow_signup

    async def sign_up(
        self, email: str, name: str, password: str, *, locale: str, client_ip: str, next_url: str
    ) -> None:
        """Create an unverified account and send the verification link; for a taken address, tell its owner.

        InvalidInput (WeakPassword) for the fields themselves, RateLimited; otherwise the same outcome either way."""
        email = check_email(email)
        name = check_name(name)
        check_new_password(password, email)
        email_norm = normalize_email(email)
        # Hashed whether or not the address is taken, so both answers take as long.
        password_hash = await self._passwords.hash(password)
        now = self._clock.now()
        next_url = safe_next(next_url, default="")
        async with self._db.transaction() as session:
            await self._limit_emails(session, email_norm, client_ip, "signup")
            existing = await users_store.find_user_by_email(session, email_norm)
            if existing is None:
                user = User(
                    id=str(uuid.uuid4()),
                    email=email,
                    email_norm=email_norm,
                    name=name,
                    password_hash=password_hash,
                    disabled=False,
                    created_at=now,
                    updated_at=now,
                    email_verified=False,
                    locale=locale,
                )
                # A concurrent sign-up of the same address fails here with Conflict: the page answers the same.
                await users_store.insert_user(session, user)
            if existing is not None:
                # Told by email, never on the page: the page is the same as for a new account.
                await self._mail.enqueue(
                    session,
                    "signup_existing",
                    to=existing.email,
                    locale=locale,
                    now=now,
                    user_id=existing.id,
                    values=self._urls(),
                )
                await self._audit.record(session, "signup.address_taken", user_id=existing.id, client_ip=client_ip)
                return
            link = await self._new_link(session, user, VERIFY, next_url=next_url)
            await self._mail.enqueue(
                session, "verify_email", to=email, locale=locale, now=now, user_id=user.id, values={"link": link}
            )
            await self._audit.record(session, "signup.created", user_id=user.id, client_ip=client_ip)

    async def resend_verification(self, email: str, *, locale: str, client_ip: str) -> None:
        """Send the verification link again (within the limits) if the address has an unverified account."""
        email_norm = normalize_email(email)[:MAX_EMAIL_LENGTH]
        async with self._db.transaction() as session:
            await self._limit_emails(session, email_norm, client_ip, "signup")
            user = await users_store.find_user_by_email(session, email_norm) if email_norm else None
            if user is None or user.disabled or user.email_verified:
                return
            link = await self._new_link(session, user, VERIFY, next_url=await self._latest_next(session, user))
            await self._mail.enqueue(
                session,
                "verify_email",
                to=user.email,
                locale=locale,
                now=self._clock.now(),
                user_id=user.id,
                values={"link": link},
            )
            await self._audit.record(session, "signup.verification_resent", user_id=user.id, client_ip=client_ip)

    async def _latest_next(self, session: AsyncSession, user: User) -> str:
        return await store.latest_next_url(session, user.id, VERIFY)

    async def verify_email(self, token: str, *, client_ip: str) -> str:
        """Use a verification link: the address is verified; returns where to go next. LinkInvalid otherwise."""
        if not token or len(token) > 100:
            raise LinkInvalid("malformed")
        now = self._clock.now()
        async with self._db.transaction() as session:
            row = await store.consume(session, sha256_hex(token), VERIFY, now)
            user = await users_store.find_user(session, row.user_id) if row else None
            # A link sent to an address the account no longer has verifies nothing.
            if row is None or user is None or user.disabled or user.email_norm != row.email_norm:
                raise LinkInvalid("unknown, used or expired")
            await users_store.update_user(session, user.id, {"email_verified": True, "updated_at": now})
            await store.use_all_of_user(session, user.id, VERIFY, now)
            await self._audit.record(session, "signup.email_verified", user_id=user.id, client_ip=client_ip)
        return row.next_url

    async def purge_expired(self, session: AsyncSession) -> int:
        """Drop links long expired (housekeeping)."""
        return await store.purge_expired(session, self._clock.now() - KEEP_EXPIRED)
