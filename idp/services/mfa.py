"""Two-step verification: enrolling an authenticator, backup codes, checking a second factor, disabling.

Every code check shares the sign-in attempt limits, refuses replayed TOTP steps on every replica, and is
audited without the code itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from idp.auth import backup_codes, totp
from idp.auth.crypto import Sealer
from idp.auth.tokens import sha256_hex
from idp.clock import Clock
from idp.errors import Conflict, DomainError, RateLimited
from idp.services.audit import AuditLog
from idp.services.notices import BACKUP_CODES_REGENERATED, MFA_DISABLED, MFA_ENABLED, Notices
from idp.services.ratelimit import RateLimiter
from idp.services.sessions import FRESH_CODES, PENDING_ENROLLMENT, ActiveSession, SessionService
from idp.services.users import end_sessions_and_tokens
from idp.store import importer as import_store
from idp.store import mfa as store
from idp.store import passkeys as passkeys_store
from idp.store import sessions as sessions_store
from idp.store import users as users_store
from idp.store.db import Database
from idp.store.models import User

# Enabling two-step verification needs a sign-in at most this old.
RECENT_SIGN_IN = timedelta(minutes=15)
FEW_CODES_LEFT = 2


class InvalidCode(DomainError):
    """The code is wrong, malformed, expired or replayed: one message for all."""


class NotEnrolling(DomainError):
    """No enrollment is under way (or it expired)."""


@dataclass(frozen=True)
class MfaStatus:
    enabled: bool
    since: datetime | None
    backup_codes_left: int
    # Which second factors are set up: an authenticator app, and how many passkeys.
    totp: bool = False
    passkeys: int = 0

    @property
    def few_codes_left(self) -> bool:
        return self.enabled and self.backup_codes_left <= FEW_CODES_LEFT


@dataclass(frozen=True)
class Enrollment:
    secret: str
    uri: str
    qr_svg: str

    @property
    def grouped_secret(self) -> str:
        return totp.grouped(self.secret)


@dataclass(frozen=True)
class SecondFactor:
    """A passed second step: the method used ("otp" or "backup") and backup codes left."""

    method: str
    backup_codes_left: int


class MfaService:
    """The rules of two-step verification."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        sealer: Sealer,
        backup_key: bytes,
        limiter: RateLimiter,
        audit: AuditLog,
        sessions: SessionService,
        issuer_name: str,
        notices: Notices | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._sealer = sealer
        self._backup_key = backup_key
        self._limiter = limiter
        self._audit = audit
        self._sessions = sessions
        self.issuer_name = issuer_name
        self._notices = notices

    async def _notify(self, session: AsyncSession, user: User, notice: str) -> None:
        if self._notices is not None:
            await self._notices.send(session, user, notice, now=self._clock.now())

    async def status(self, user_id: str) -> MfaStatus:
        """On when an authenticator is confirmed or a passkey is registered (either is a second factor)."""
        async with self._db.transaction() as session:
            cred = await store.find_totp(session, user_id)
            keys = await passkeys_store.list_of_user(session, user_id)
            totp_on = cred is not None and cred.confirmed_at is not None
            enabled = totp_on or bool(keys)
            left = await store.count_backup_codes_left(session, user_id) if enabled else 0
        starts = [cred.confirmed_at] if cred is not None and cred.confirmed_at is not None else []
        since = min(starts + [k.created_at for k in keys]) if enabled else None
        return MfaStatus(enabled=enabled, since=since, backup_codes_left=left, totp=totp_on, passkeys=len(keys))

    def is_recent(self, active: ActiveSession) -> bool:
        return self._clock.now() - active.auth_time <= RECENT_SIGN_IN

    # -- enrollment -----------------------------------------------------------------------------------

    async def start_enrollment(self, active: ActiveSession) -> Enrollment:
        """This session's pending secret (kept across reloads and wrong codes until it expires), or a new one.

        The secret belongs to the sign-in session, not the account: someone else signed in to the account
        (with a stolen password, say) gets a secret of their own and never sees or confirms this one.
        """
        user = active.user
        now = self._clock.now()
        aad = _enrollment_aad(active)
        async with self._db.transaction() as session:
            if await store.has_confirmed_totp(session, user.id):
                raise Conflict("two-step verification is already on")
            pending = await store.find_enrollment(session, active.id_hash)
            if pending is not None and now - pending.created_at < PENDING_ENROLLMENT:
                secret = self._sealer.open(pending.secret, aad=aad).decode()
            else:
                secret = totp.new_secret()
                await store.put_enrollment(session, active.id_hash, self._sealer.seal(secret.encode(), aad=aad), now)
        uri = totp.provisioning_uri(secret, user.email, self.issuer_name)
        return Enrollment(secret=secret, uri=uri, qr_svg=totp.qr_svg(uri))

    async def confirm_enrollment(self, active: ActiveSession, code: str, *, client_ip: str) -> tuple[str, list[str]]:
        """Turn two-step verification on with a code from this session's pending secret; every other session,
        unredeemed code and token of the person ends. Returns the elevated session's cookie and the 8 backup
        codes (shown once)."""
        user = active.user
        now = self._clock.now()
        async with self._db.transaction() as session:
            enabled = await store.has_confirmed_totp(session, user.id)
            pending = await store.find_enrollment(session, active.id_hash)
        if enabled:
            raise Conflict("two-step verification is already on")
        if pending is None or now - pending.created_at >= PENDING_ENROLLMENT:
            raise NotEnrolling("the setup has expired; scan the new QR code")
        # Wrong codes while setting up count under the enrollment's own key, never against password sign-in.
        reserved = await self._reserve(user, client_ip, enrolling=True)
        secret = self._sealer.open(pending.secret, aad=_enrollment_aad(active)).decode()
        step = totp.matching_step(secret, code, now)
        if step is None:
            await self._failed(user, client_ip, "enroll", reserved)
            raise InvalidCode("wrong code")
        codes = backup_codes.generate()
        async with self._db.transaction() as session:
            await users_store.lock_person(session, user.id)
            sealed = self._sealer.seal(secret.encode(), aad=user.id)
            if not await store.enable_totp(session, user.id, sealed, step, now):
                raise Conflict("two-step verification is already on")
            await self._limiter.release(session, reserved)
            await store.replace_backup_codes(session, user.id, [self._hash(c) for c in codes], now)
            # Confirming the new authenticator's code is a second factor: the session becomes mfa. Deleting the
            # old session row takes its pending secret with it.
            cookie = await self._sessions.elevate(session, active, ("pwd", "otp"), client_ip=client_ip)
            # Whoever else is signed in did so with the password alone: out they go, with their grants.
            ended = await end_sessions_and_tokens(session, user.id, now, keep=sha256_hex(cookie))
            await self._store_fresh(session, cookie, codes)
            await self._audit.record(session, "mfa.enabled", user_id=user.id, client_ip=client_ip, **ended)
            await self._notify(session, user, MFA_ENABLED)
        return cookie, codes

    # -- the second step ------------------------------------------------------------------------------

    async def verify(
        self, user: User, code: str, *, kind: str, client_ip: str, device: str | None = None
    ) -> SecondFactor:
        """Check an authenticator code (`kind` "otp") or a backup code ("backup"); InvalidCode or RateLimited.

        `device` (the browser's device cookie) lets a browser known to the account count apart from strangers."""
        now = self._clock.now()
        reserved = await self._reserve(user, client_ip, device=device)
        async with self._db.transaction() as session:
            cred = await store.find_totp(session, user.id)
            if kind == "otp":
                if cred is None or cred.confirmed_at is None:
                    ok = False
                else:
                    secret = self._sealer.open(cred.secret, aad=user.id).decode()
                    step = totp.matching_step(secret, code, now)
                    ok = step is not None and await store.accept_step(session, user.id, step)
            else:
                # Backup codes exist only while two-step verification is on (with an authenticator, passkeys or
                # both): turning it off or an operator's reset deletes them.
                canonical = backup_codes.normalize(code)
                ok = canonical is not None and await store.use_backup_code(session, user.id, self._hash(canonical), now)
            left = await store.count_backup_codes_left(session, user.id) if ok and kind == "backup" else 0
            if ok:
                await self._limiter.release(session, reserved)
            if ok and kind == "backup":
                await self._audit.record(
                    session, "mfa.backup_code_used", user_id=user.id, client_ip=client_ip, remaining=left
                )
        if not ok:
            await self._failed(user, client_ip, kind, reserved)
            raise InvalidCode("wrong code")
        return SecondFactor(method=kind, backup_codes_left=left)

    async def verify_any(self, user: User, code: str, *, client_ip: str) -> SecondFactor:
        """An authenticator code (six digits) or a backup code, whichever this looks like."""
        kind = "otp" if totp.normalize_code(code).isdigit() else "backup"
        return await self.verify(user, code, kind=kind, client_ip=client_ip)

    async def complete_sign_in(
        self, active: ActiveSession, factor: SecondFactor, *, client_ip: str, device: str | None = None
    ) -> tuple[str, tuple[str, ...]]:
        """Finish a pending sign-in or step up a password-only session; returns the new cookie and methods."""
        methods = ("pwd", factor.method) if factor.method in ("otp", "hwk", "swk") else ("pwd", "backup")
        async with self._db.transaction() as session:
            # The person first (as a reset or an operator's revoke does), so a session they end is either ended
            # before this (SessionEnded) or, replaced by this one, ended after it.
            await users_store.lock_person(session, active.user.id)
            cookie = await self._sessions.elevate(session, active, methods, client_ip=client_ip)
            user = active.user
            limits = await self._limiter.sign_in_limits(session, user.email_norm, user, client_ip, device)
            await self._limiter.reset(session, limits[0])
            await self._audit.record(
                session,
                "login.success",
                user_id=active.user.id,
                client_ip=client_ip,
                methods=" ".join(methods),
                step="second",
            )
        return cookie, methods

    async def issue_first_codes(self, user: User, cookie: str, *, client_ip: str) -> list[str] | None:
        """Eight backup codes for a person whose authenticator came with an import and who has just passed their
        first second step (INTERFACE §7); None for everyone else, so they are shown once."""
        async with self._db.transaction() as session:
            if not await import_store.lacks_backup_codes(session, user.id):
                return None
            codes = backup_codes.generate()
            await store.replace_backup_codes(session, user.id, [self._hash(c) for c in codes], self._clock.now())
            await self._store_fresh(session, cookie, codes)
            await self._audit.record(session, "mfa.backup_codes_issued", user_id=user.id, client_ip=client_ip)
        return codes

    # -- managing ---------------------------------------------------------------------------------------

    async def disable(self, active: ActiveSession, code: str, *, client_ip: str) -> None:
        """Turn two-step verification off with a valid current code; other sessions and tokens end."""
        status = await self.status(active.user.id)
        if not status.enabled:
            raise Conflict("two-step verification is already off")
        await self.verify_any(active.user, code, client_ip=client_ip)
        now = self._clock.now()
        async with self._db.transaction() as session:
            await users_store.lock_person(session, active.user.id)
            await store.delete_totp(session, active.user.id)
            await store.delete_backup_codes(session, active.user.id)
            await passkeys_store.delete_all_of_user(session, active.user.id)
            ended = await end_sessions_and_tokens(session, active.user.id, now, keep=active.id_hash)
            await self._audit.record(session, "mfa.disabled", user_id=active.user.id, client_ip=client_ip, **ended)
            await self._notify(session, active.user, MFA_DISABLED)

    async def regenerate(self, active: ActiveSession, code: str, *, client_ip: str) -> list[str]:
        """New backup codes for a valid current code; all old ones stop working."""
        status = await self.status(active.user.id)
        if not status.enabled:
            raise Conflict("two-step verification is off")
        await self.verify_any(active.user, code, client_ip=client_ip)
        codes = backup_codes.generate()
        now = self._clock.now()
        async with self._db.transaction() as session:
            await store.replace_backup_codes(session, active.user.id, [self._hash(c) for c in codes], now)
            await sessions_store.set_fresh_codes(
                session, active.id_hash, self._sealer.seal(json.dumps(codes).encode(), aad=active.id_hash), now
            )
            await self._audit.record(
                session, "mfa.backup_codes_regenerated", user_id=active.user.id, client_ip=client_ip
            )
            await self._notify(session, active.user, BACKUP_CODES_REGENERATED)
        return codes

    async def fresh_codes(self, active: ActiveSession) -> list[str] | None:
        """The backup codes this session generated in the last few minutes, for download or printing; once
        that time is up the sealed copy is dropped from the session (housekeeping drops unvisited ones)."""
        async with self._db.transaction() as session:
            row = await sessions_store.find_session(session, active.id_hash)
            if row is None or row.fresh_codes is None or row.fresh_codes_at is None:
                return None
            if self._clock.now() - row.fresh_codes_at >= FRESH_CODES:
                await sessions_store.clear_fresh_codes(session, active.id_hash)
                return None
        return list(json.loads(self._sealer.open(row.fresh_codes, aad=active.id_hash)))

    # -- shared with the passkey service (idp.services.passkeys) --------------------------------------------

    async def reserve_attempt(self, user: User, client_ip: str, *, device: str | None = None) -> list[int]:
        """Count a second-step attempt under the sign-in limits before it is checked (see `_reserve`)."""
        return await self._reserve(user, client_ip, device=device)

    async def release_attempt(self, session: AsyncSession, reserved: list[int]) -> None:
        """The attempt was right: it does not count."""
        await self._limiter.release(session, reserved)

    async def failed_attempt(self, user: User, client_ip: str, kind: str, reserved: list[int], *, reason: str) -> None:
        """The attempt was wrong: it counts, and is audited with a reason that is never the secret itself."""
        async with self._db.transaction() as session:
            await self._limiter.settle(session, reserved)
            await self._audit.record(
                session,
                "mfa.failure",
                user_id=user.id,
                client_ip=client_ip,
                outcome="failure",
                method=kind,
                reason=reason,
            )

    async def keep_fresh_codes(self, session: AsyncSession, cookie: str, codes: list[str]) -> None:
        """Keep backup codes just made readable by the session behind `cookie` for download and printing."""
        await self._store_fresh(session, cookie, codes)

    async def forget_fresh_codes(self, active: ActiveSession) -> None:
        """The person saved the codes: the sealed copy kept for showing and downloading goes now."""
        async with self._db.transaction() as session:
            await sessions_store.clear_fresh_codes(session, active.id_hash)

    # -- helpers ----------------------------------------------------------------------------------------

    def _hash(self, code: str) -> str:
        return backup_codes.digest(self._backup_key, code)

    async def _store_fresh(self, session: AsyncSession, cookie: str, codes: list[str]) -> None:
        id_hash = sha256_hex(cookie)
        sealed = self._sealer.seal(json.dumps(codes).encode(), aad=id_hash)
        await sessions_store.set_fresh_codes(session, id_hash, sealed, self._clock.now())

    async def _reserve(
        self, user: User, client_ip: str, *, device: str | None = None, enrolling: bool = False
    ) -> list[int]:
        """Count this attempt as a failure before checking the code (so concurrent guesses see each other),
        then refuse if over the limit; the caller releases the reservation when the code was right."""
        async with self._db.transaction() as session:
            if enrolling:
                limits = self._limiter.enrollment_limits(user.id)
            else:
                limits = await self._limiter.sign_in_limits(session, user.email_norm, user, client_ip, device)
            reserved = await self._limiter.record_failure(session, limits)
        try:
            await self._limiter.admit(self._db, limits, reserved)
        except RateLimited as exc:
            async with self._db.transaction() as session:
                await self._limiter.release(session, reserved)
                await self._audit.record(
                    session, "mfa.locked", user_id=user.id, client_ip=client_ip, outcome="refused", scope=exc.scope
                )
            raise
        return reserved

    async def _failed(self, user: User, client_ip: str, kind: str, reserved: list[int]) -> None:
        async with self._db.transaction() as session:
            await self._limiter.settle(session, reserved)
            await self._audit.record(
                session, "mfa.failure", user_id=user.id, client_ip=client_ip, outcome="failure", method=kind
            )


def _enrollment_aad(active: ActiveSession) -> str:
    """A pending secret opens only for the person and the sign-in session it was made for."""
    return f"enroll:{active.user.id}:{active.id_hash}"
