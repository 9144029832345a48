"""Accounts people run themselves (issue #13): sign-up, email verification, the forgotten password, changing the
sign-in address and deleting the account.

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
from idp.services.notices import ACCOUNT_DELETED, EMAIL_CHANGED, PASSWORD_CHANGED, Notices
from idp.services.passkeys import CheckedAssertion, PasskeyRefused, PasskeyService
from idp.services.ratelimit import Limit, RateLimiter, address_key
from idp.services.sessions import ActiveSession
from idp.services.users import (
    MAX_EMAIL_LENGTH,
    MIN_PASSWORD_LENGTH,
    check_email,
    check_name,
    end_sessions_and_tokens,
    erase_person,
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
CHANGE_EMAIL = "change_email"
LIFETIMES = {VERIFY: timedelta(hours=24), RESET: timedelta(minutes=30), CHANGE_EMAIL: timedelta(hours=24)}
LINK_PATHS = {VERIFY: "/verify-email", RESET: "/password/reset", CHANGE_EMAIL: "/account/email/confirm"}
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


class _AssertionUsed(Exception):
    """The passkey's challenge or counter was used by another request meanwhile: the reset is rolled back."""


class SameEmail(InvalidInput):
    """The new address is the one the account already has."""


class AddressTaken(DomainError):
    """The new address belongs to another account by the time the link is used."""


@dataclass(frozen=True)
class EmailChangeLink:
    """A change-of-address link still valid: whose account, and the address it moves to."""

    user: User
    new_email: str


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
        notices: Notices | None = None,
        *,
        passkeys: PasskeyService | None = None,
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
        self._notices = notices or Notices(mail, issuer=settings.issuer, support_url=settings.support_url)
        self._passkeys = passkeys

    @property
    def enabled(self) -> bool:
        """Sign-up, verification and reset need email (INTERFACE §2)."""
        return self._mail.enabled

    # -- links --------------------------------------------------------------------------------------------

    async def _new_link(
        self, session: AsyncSession, user: User, purpose: str, *, next_url: str = "", new_email: str | None = None
    ) -> str:
        """A single-use link for `purpose`, sent to the account's address (or to `new_email`, which it moves to)."""
        token = new_opaque(32)
        now = self._clock.now()
        await store.insert(
            session,
            AccountToken(
                token_hash=sha256_hex(token),
                purpose=purpose,
                user_id=user.id,
                email_norm=normalize_email(new_email) if new_email else user.email_norm,
                next_url=next_url,
                new_email=new_email,
                created_at=now,
                expires_at=now + LIFETIMES[purpose],
            ),
        )
        return f"{self._issuer}{LINK_PATHS[purpose]}?{urlencode({'token': token})}"

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

    async def reset_options(self, link: ResetLink, token: str) -> tuple[str, str] | None:
        """ "Use a passkey" on the reset page: request options and the proof bound to this link, when two-step
        verification is on and the person has passkeys; None otherwise."""
        if not link.needs_code or self._passkeys is None:
            return None
        return await self._passkeys.reset_options(link.user.id, token)

    async def reset_password(
        self,
        token: str,
        password: str,
        code: str,
        *,
        client_ip: str,
        credential: str = "",
        passkey_proof: str = "",
    ) -> str:
        """Set a new password through a reset link; returns where to go next (the job board, or "").

        With two-step verification on, the second factor is a code, or a passkey's `credential` answering the
        challenge of `passkey_proof` (from `reset_options`), which is used up with the new password.
        LinkInvalid, WeakPassword, CodeRequired, InvalidCode (PasskeyRefused) or RateLimited; nothing changes on
        any of them."""
        link = await self.check_reset_link(token)
        user = link.user
        check_new_password(password, user.email)
        checked: CheckedAssertion | None = None
        if link.needs_code:
            if credential and self._passkeys is not None:
                # Counts against the account's attempt limit like a wrong code; used up below, with the password.
                checked = await self._passkeys.check_reset_assertion(
                    user, token, credential, passkey_proof, client_ip=client_ip
                )
            elif not code.strip():
                raise CodeRequired("two-step verification is on")
            else:
                # Counts against the account's attempt limit like any wrong code at sign-in.
                await self._mfa.verify_any(user, code, client_ip=client_ip)
        password_hash = await self._passwords.hash(password)
        now = self._clock.now()
        try:
            async with self._db.transaction() as session:
                row = await store.consume(session, sha256_hex(token), RESET, now)
                if row is None or row.user_id != user.id:
                    raise LinkInvalid("used meanwhile")
                # The passkey's challenge is spent in this transaction: a refused or replayed answer changes nothing.
                passkeys = self._passkeys
                if (
                    checked
                    and passkeys
                    and not await passkeys.use_reset_assertion(session, checked, client_ip=client_ip)
                ):
                    raise _AssertionUsed
                # The link reached the person's mailbox: that verifies the address as well as a verification link
                # would.
                await users_store.set_password_hash(session, user.id, password_hash, now, email_verified=True)
                await store.use_all_of_user(session, user.id, RESET, now)
                ended = await end_sessions_and_tokens(session, user.id, now)
                cleared = await self._limiter.unlock(session, user)
                await self._notices.send(session, user, PASSWORD_CHANGED, now=now)
                await self._audit.record(
                    session, "password.reset", user_id=user.id, client_ip=client_ip, limits_cleared=cleared, **ended
                )
        except _AssertionUsed:
            assert checked is not None
            assert self._passkeys is not None
            await self._passkeys.refuse_reset_assertion(checked, client_ip=client_ip)
            raise PasskeyRefused("used_meanwhile") from None
        return row.next_url

    # -- changing the password while signed in ------------------------------------------------------------

    async def change_password(
        self, active: ActiveSession, current: str, new: str, *, client_ip: str, device: str | None = None
    ) -> None:
        """The current password is required; the person's other sessions and every token end, a notice goes out.

        InvalidCredentials (a wrong current password, counted like a wrong sign-in), WeakPassword, RateLimited."""
        user = active.user
        await self._check_password(user, current, client_ip=client_ip, device=device, failed="password.change_failed")
        check_new_password(new, user.email)
        password_hash = await self._passwords.hash(new)
        now = self._clock.now()
        async with self._db.transaction() as session:
            # Its first statement updates the person's row: that holds it as `users_store.lock_person` would.
            await users_store.set_password_hash(session, user.id, password_hash, now)
            await store.use_all_of_user(session, user.id, RESET, now)
            ended = await end_sessions_and_tokens(session, user.id, now, keep=active.id_hash)
            await self._notices.send(session, user, PASSWORD_CHANGED, now=now)
            await self._audit.record(session, "password.changed", user_id=user.id, client_ip=client_ip, **ended)

    async def _check_password(
        self, user: User, password: str, *, client_ip: str, device: str | None, failed: str
    ) -> None:
        """The person's current password, confirming a change made while signed in; InvalidCredentials (counted
        like a wrong sign-in, audited as `failed`) or RateLimited."""
        async with self._db.transaction() as session:
            limits = await self._limiter.sign_in_limits(session, user.email_norm, user, client_ip, device)
            await self._limiter.check(session, limits)
        if not await self._passwords.verify(user.password_hash, password[:MAX_PASSWORD_LENGTH]):
            async with self._db.transaction() as session:
                await self._limiter.settle(session, await self._limiter.record_failure(session, limits))
                await self._audit.record(session, failed, user_id=user.id, client_ip=client_ip, outcome="failure")
            raise InvalidCredentials("wrong current password")

    # -- changing the sign-in address ---------------------------------------------------------------------

    async def request_email_change(
        self,
        active: ActiveSession,
        new_email: str,
        password: str,
        *,
        locale: str,
        client_ip: str,
        device: str | None = None,
    ) -> str:
        """Send a link to the new address; the change happens when it is used. Returns the address as typed.

        The answer is the same whether or not the address has an account (its owner is told by email instead).
        InvalidInput (SameEmail), InvalidCredentials, RateLimited."""
        user = active.user
        new_email = check_email(new_email)
        new_norm = normalize_email(new_email)
        if new_norm == user.email_norm:
            raise SameEmail("this is already the account's address")
        await self._check_password(user, password, client_ip=client_ip, device=device, failed="email.change_failed")
        now = self._clock.now()
        async with self._db.transaction() as session:
            await self._limit_emails(session, new_norm, client_ip, "change")
            taken = await users_store.find_user_by_email(session, new_norm)
            if taken is not None:
                await self._mail.enqueue(
                    session,
                    "email_change_taken",
                    to=taken.email,
                    locale=taken.locale,
                    now=now,
                    user_id=taken.id,
                    values=self._urls(),
                )
                # On the owner's record, not the requester's: their export must not tell them the address is taken.
                await self._audit.record(
                    session, "email.change_to_taken_address", user_id=taken.id, client_ip=client_ip
                )
            else:
                link = await self._new_link(session, user, CHANGE_EMAIL, new_email=new_email)
                await self._mail.enqueue(
                    session,
                    "email_change",
                    to=new_email,
                    locale=locale,
                    now=now,
                    user_id=user.id,
                    values={"link": link},
                )
            await users_store.update_user(session, user.id, {"locale": locale})
            await self._audit.record(session, "email.change_requested", user_id=user.id, client_ip=client_ip)
        return new_email

    async def check_email_change_link(self, token: str) -> EmailChangeLink:
        """The account and new address of a live change-of-address link; LinkInvalid otherwise."""
        if not token or len(token) > 100:
            raise LinkInvalid("malformed")
        async with self._db.transaction() as session:
            row = await store.find_live(session, sha256_hex(token), CHANGE_EMAIL, self._clock.now())
            user = await users_store.find_user(session, row.user_id) if row else None
        if row is None or user is None or user.disabled or not row.new_email:
            raise LinkInvalid("unknown, used or expired")
        return EmailChangeLink(user=user, new_email=row.new_email)

    async def confirm_email_change(self, token: str, *, client_ip: str) -> str:
        """Use a change-of-address link: the account signs in with the new address, verified; the old address is
        told. Returns the new address. LinkInvalid, or AddressTaken (nothing changes, the link stays unused).

        Sessions and tokens go on: the address names the account, it proves nothing (the password and second
        factor are unchanged, and the request needed the password), as with Google, GitHub and Keycloak."""
        if not token or len(token) > 100:
            raise LinkInvalid("malformed")
        now = self._clock.now()
        async with self._db.transaction() as session:
            row = await store.consume(session, sha256_hex(token), CHANGE_EMAIL, now)
            user = await users_store.find_user(session, row.user_id) if row else None
            if row is None or user is None or user.disabled or not row.new_email:
                raise LinkInvalid("unknown, used or expired")
            old_email, new_email = user.email, row.new_email
            taken = await users_store.find_user_by_email(session, row.email_norm)
            if taken is not None and taken.id != user.id:
                raise AddressTaken("the address has an account now")
            try:
                await users_store.change_email(session, user.id, new_email, row.email_norm, now)
            except Conflict:
                raise AddressTaken("the address was taken meanwhile") from None
            # Links sent to the old address, and other pending moves, stop working.
            for purpose in (CHANGE_EMAIL, VERIFY, RESET):
                await store.use_all_of_user(session, user.id, purpose, now)
            await self._notices.send(session, user, EMAIL_CHANGED, now=now, to=old_email, new_email=new_email)
            await self._audit.record(session, "email.changed", user_id=user.id, client_ip=client_ip)
        return new_email

    # -- deleting the account -----------------------------------------------------------------------------

    async def delete_account(
        self, active: ActiveSession, password: str, code: str, *, client_ip: str, device: str | None = None
    ) -> None:
        """The person deletes their own account: the password, and with two-step verification on a current code
        (or backup code), are required; then `erase_person`. InvalidCredentials, CodeRequired, InvalidCode,
        RateLimited; nothing changes on any of them."""
        user = active.user
        await self._check_password(user, password, client_ip=client_ip, device=device, failed="account.delete_failed")
        if (await self._mfa.status(user.id)).enabled:
            if not code.strip():
                raise CodeRequired("two-step verification is on")
            await self._mfa.verify_any(user, code, client_ip=client_ip)
        now = self._clock.now()
        async with self._db.transaction() as session:
            fresh = await users_store.lock_person(session, user.id)
            if fresh is None:
                raise InvalidCredentials("the account is already gone")
            ended = await erase_person(session, fresh, now, limiter=self._limiter)
            # Queued after the person's other emails were dropped; it names no more than the others did.
            await self._notices.send(session, fresh, ACCOUNT_DELETED, now=now)
            # No client address: the event must hold nothing about the person but the user id.
            await self._audit.record(session, "account.deleted", user_id=user.id, **ended)

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
