"""Password sign-in: limits, argon2 verification with no enumeration, rehash on cost change, a new session.

Later steps (the second factor) extend the methods recorded on the session; `amr`/`acr` derive from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession

from idp.auth.passwords import MAX_PASSWORD_LENGTH, PasswordPool
from idp.clock import Clock
from idp.errors import InvalidCredentials, NotFound, Overloaded, RateLimited
from idp.services.audit import AuditLog
from idp.services.ratelimit import Limit, RateLimiter
from idp.services.sessions import SessionService
from idp.services.users import MAX_EMAIL_LENGTH, normalize_email
from idp.store import importer as import_store
from idp.store import users as users_store
from idp.store.db import Database
from idp.store.hot import SignInFinish
from idp.store.models import User


@dataclass(frozen=True)
class SignIn:
    """What a successful password sign-in produced."""

    user: User
    session_cookie: str
    methods: tuple[str, ...]
    pending: bool = False
    device_cookie: str = ""  # this browser's device cookie, to set (again) on the response


class LoginService:
    """The password step of signing in."""

    def __init__(
        self,
        db: Database,
        passwords: PasswordPool,
        limiter: RateLimiter,
        sessions: SessionService,
        audit: AuditLog,
        clock: Clock,
    ) -> None:
        self._db = db
        self._passwords = passwords
        self._limiter = limiter
        self._sessions = sessions
        self._audit = audit
        self._clock = clock

    async def sign_in_with_password(
        self,
        email: str,
        password: str,
        *,
        client_ip: str,
        user_agent: str = "",
        previous_cookie: str | None = None,
        device: str | None = None,
    ) -> SignIn:
        """Check the password and start a session (replacing `previous_cookie`'s); raise InvalidCredentials,
        RateLimited or Overloaded. Every failure looks the same from outside. `device` is the browser's device
        cookie; the result carries the one to set."""
        email_norm = normalize_email(email)[:MAX_EMAIL_LENGTH]

        # The attempt is counted as a failure and committed before it is checked, so concurrent guesses see each
        # other and a burst cannot slip under the limit; a refusal or a success takes the reservation back. The
        # look-up reads without a transaction and the reservation is one INSERT, atomic and committed by itself:
        # no BEGIN/COMMIT round trips before the hash.
        user, legacy, limits = await self._db.read(partial(self._look_up, email_norm, client_ip, device))
        reserved = await self._db.write_one(partial(self._limiter.record_failure, limits=limits))

        # Check phase: short transactions, released before the slow hash so no connection waits on argon2.
        try:
            await self._limiter.admit(self._db, limits, reserved)
        except RateLimited as exc:
            # The lockout is audited; the refused attempt was not tried, so it does not count.
            async with self._db.transaction() as session:
                await self._limiter.release(session, reserved)
                await self._audit.record(
                    session,
                    "login.locked",
                    user_id=user.id if user else None,
                    client_ip=client_ip,
                    outcome="refused",
                    scope=exc.scope,
                )
            raise

        too_long = len(password) > MAX_PASSWORD_LENGTH
        candidate = password[:MAX_PASSWORD_LENGTH]
        # Always one verification at full cost, against the user's hash (or imported ones) or a dummy one.
        try:
            if legacy:
                matched = await self._passwords.verify_legacy(legacy, candidate)
                ok = matched is not None
            else:
                ok = await self._passwords.verify(user.password_hash if user else None, candidate)
        except Overloaded:
            # Nothing was tried, so nothing counts.
            async with self._db.transaction() as session:
                await self._limiter.release(session, reserved)
            raise
        ok = ok and not too_long and user is not None and not user.disabled

        if not ok:
            async with self._db.transaction() as session:
                reason = "unknown_user" if user is None else ("disabled" if user.disabled else "bad_password")
                await self._limiter.settle(session, reserved)
                await self._audit.record(
                    session,
                    "login.failure",
                    user_id=user.id if user else None,
                    client_ip=client_ip,
                    outcome="failure",
                    reason=reason,
                )
            raise InvalidCredentials(reason)

        assert user is not None
        new_hash = None
        # The first sign-in with an imported password makes it idp's own argon2id; the boards' hashes all go.
        if legacy or self._passwords.needs_rehash(user.password_hash or ""):
            new_hash = await self._passwords.hash(candidate)

        methods = ("pwd",)
        if new_hash or previous_cookie:
            async with self._db.transaction() as session:
                if new_hash:
                    await users_store.set_password_hash(session, user.id, new_hash, self._clock.now())
                if legacy and new_hash:
                    await self._audit.record(
                        session, "login.imported_password_adopted", user_id=user.id, client_ip=client_ip
                    )
                # Session fixation: whatever session the browser had is ended before a fresh id is issued.
                await self._sessions.end(session, previous_cookie)

        cookie, row = self._sessions.new_row(user.id, methods, client_ip=client_ip, user_agent=user_agent)
        device_cookie, device_hash = self._limiter.device_of(device, user.id)
        # One transaction (on PostgreSQL one statement) decides and writes the rest. A person with two-step
        # verification is not signed in until the second step passes, and their failure count stays until the code
        # is right, so a known password cannot be used to reset it between code guesses. The browser is known to
        # the account from now on either way (so a stranger cannot lock the person out of the second step either).
        pending = await self._db.hot.finish_sign_in(
            SignInFinish(
                user_id=user.id,
                session=row,
                expires_at=self._sessions.expiry(pending=False),
                pending_expires_at=self._sessions.expiry(pending=True),
                device_hash=device_hash,
                now=self._clock.now(),
                hit_ids=tuple(reserved),
                clear_keys=tuple(limit.key for limit in limits[:1]),
                signed_in_event=self._audit.event_row(
                    "login.success", user_id=user.id, client_ip=client_ip, methods=" ".join(methods)
                ),
                pending_event=self._audit.event_row("login.password_ok", user_id=user.id, client_ip=client_ip),
            )
        )
        return SignIn(user=user, session_cookie=cookie, methods=methods, pending=pending, device_cookie=device_cookie)

    async def _look_up(
        self, email_norm: str, client_ip: str, device: str | None, session: AsyncSession
    ) -> tuple[User | None, list[str], list[Limit]]:
        """The account, its imported hashes if it has no idp password yet (INTERFACE §7), and the attempt's limits."""
        user = await users_store.find_user_by_email(session, email_norm) if email_norm else None
        legacy = (
            await import_store.legacy_hashes_of(session, user.id)
            if user is not None and user.password_hash is None
            else []
        )
        # A browser that signed in to this account before has its own counter: strangers cannot lock it out.
        limits = await self._limiter.sign_in_limits(session, email_norm, user, client_ip, device)
        return user, legacy, limits

    async def unlock(self, user_id: str, *, actor: str, client_ip: str = "") -> User:
        """An operator clears every attempt limit on the account (device-bound ones included); audited."""
        async with self._db.transaction() as session:
            user = await users_store.find_user(session, user_id) if len(user_id) <= 36 else None
            if user is None:
                raise NotFound("no user with this id")
            cleared = await self._limiter.unlock(session, user)
            await self._audit.record(
                session, "admin.user_unlocked", user_id=user.id, actor=actor, client_ip=client_ip, cleared=cleared
            )
        return user


def amr_and_acr(methods: tuple[str, ...] | list[str]) -> tuple[list[str], str]:
    """RFC 8176 `amr` and our `acr` from the methods a session used (INTERFACE §3 table).

    password → ["pwd"]/pwd; + authenticator code → ["pwd","otp","mfa"]/mfa; + backup code → ["pwd","mfa"]/mfa;
    + passkey → ["pwd","hwk","mfa"] (device-bound) or ["pwd","swk","mfa"] (synced)/mfa; a passkey with user
    verification alone (passwordless) → ["hwk"|"swk","mfa"]/mfa.
    """
    amr = [m for m in ("pwd", "otp", "hwk", "swk") if m in methods]
    second_factor = any(m in methods for m in ("otp", "backup", "hwk", "swk"))
    if second_factor:
        amr.append("mfa")
    return amr, ("mfa" if second_factor else "pwd")


ACR_RANK = {"pwd": 1, "mfa": 2}
