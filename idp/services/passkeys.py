"""Passkeys (WebAuthn Level 3) as a second factor: registering, the second step, naming and removing (INTERFACE §4).

py_webauthn checks the ceremonies (W3C WebAuthn §7.1, §7.2); the rules around them live here: challenges single use,
bound to the sign-in session and 5 minutes old at most, the RP ID and origin taken from the issuer, the sign counter
refused when it does not move forward, and a credential that belongs to someone else refused.
"""

from __future__ import annotations

import hmac
import json
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.authentication.verify_authentication_response import VerifiedAuthentication
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url, parse_authentication_credential_json
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from idp.auth import backup_codes
from idp.auth.tokens import hmac_hex, sha256_hex
from idp.clock import Clock
from idp.errors import Conflict, DomainError, NotFound
from idp.services.audit import AuditLog
from idp.services.login import amr_and_acr
from idp.services.mfa import RECENT_SIGN_IN, InvalidCode, MfaService, SecondFactor
from idp.services.notices import PASSKEY_ADDED, Notices
from idp.services.sessions import PASSKEY_CHALLENGE, ActiveSession, SessionService, describe_browser
from idp.services.users import end_sessions_and_tokens
from idp.store import markers as markers_store
from idp.store import mfa as mfa_store
from idp.store import passkeys as store
from idp.store import users as users_store
from idp.store.db import Database
from idp.store.models import Passkey, User

# A challenge is good for this long after it was handed out; the browser is told how much of it is left.
CHALLENGE_LIFETIME = PASSKEY_CHALLENGE
REGISTER = "register"
AUTHENTICATE = "authenticate"
MAX_NAME = 60
# More than anyone needs; bounds the list, the options sent to the browser and the work per sign-in.
MAX_PASSKEYS = 20
_TRANSPORTS = {t.value for t in AuthenticatorTransport}


class ReauthRequired(DomainError):
    """Adding a passkey needs a sign-in from the last few minutes."""


class SecondFactorRequired(DomainError):
    """Two-step verification is on and this session has not passed it."""


class PasskeyRefused(InvalidCode):
    """The browser's answer did not prove a passkey of this person: one message for every reason."""


@dataclass(frozen=True)
class PasskeyView:
    """A passkey as the account page, the support console and the admin API show it: never key material."""

    id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    # The WebAuthn backup-eligible flag: a synced passkey (amr "swk"); otherwise bound to one device ("hwk").
    synced: bool
    backed_up: bool


@dataclass(frozen=True)
class Added:
    """A new passkey; when it turned two-step verification on, the elevated session's cookie and backup codes."""

    passkey: PasskeyView
    cookie: str | None = None
    codes: list[str] | None = None


@dataclass(frozen=True)
class CheckedAssertion:
    """An assertion that verified against a person's passkey, not yet used up (see `use_reset_assertion`)."""

    user: User
    passkey: Passkey
    verified: VerifiedAuthentication
    challenge: str
    reserved: list[int]


def rp_of(issuer: str) -> tuple[str, str]:
    """The RP ID (the issuer's host) and the origin (scheme://host[:port]) the browser reports for our pages."""
    parts = urlsplit(issuer)
    return parts.hostname or "localhost", f"{parts.scheme}://{parts.netloc}"


def method_of(passkey: Passkey) -> str:
    """RFC 8176: "swk" for a key that may be synced to other devices (BE flag), "hwk" for a device-bound one."""
    return "swk" if passkey.backup_eligible else "hwk"


def _view(passkey: Passkey) -> PasskeyView:
    return PasskeyView(
        id=passkey.id,
        name=passkey.name,
        created_at=passkey.created_at,
        last_used_at=passkey.last_used_at,
        synced=passkey.backup_eligible,
        backed_up=passkey.backup_state,
    )


def _credential_id_of(credential: str) -> str | None:
    """The base64url credential id an assertion names, or None when it is not readable at all."""
    try:
        return bytes_to_base64url(parse_authentication_credential_json(credential).raw_id)
    except (WebAuthnException, ValueError, TypeError, KeyError):
        return None


class PasskeyService:
    """The rules of passkeys; two-step verification's own rules (limits, turning off) stay in MfaService."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        issuer: str,
        site_name: str,
        mfa: MfaService,
        sessions: SessionService,
        audit: AuditLog,
        notices: Notices,
        backup_key: bytes,
        signin_key: bytes,
    ) -> None:
        self._db = db
        self._clock = clock
        self.rp_id, self.origin = rp_of(issuer)
        self._issuer = issuer
        self._site_name = site_name
        self._mfa = mfa
        self._sessions = sessions
        self._audit = audit
        self._notices = notices
        self._backup_key = backup_key
        self._signin_key = signin_key

    # -- reading ------------------------------------------------------------------------------------------

    async def list_passkeys(self, user_id: str) -> list[PasskeyView]:
        """The person's passkeys, oldest first (for the account page, the support console, the admin API)."""
        async with self._db.transaction() as session:
            return [_view(p) for p in await store.list_of_user(session, user_id)]

    async def has_passkeys(self, user_id: str) -> bool:
        async with self._db.transaction() as session:
            return await store.count_of_user(session, user_id) > 0

    # -- registering --------------------------------------------------------------------------------------

    async def check_may_add(self, active: ActiveSession) -> None:
        """ReauthRequired unless the password was given recently; SecondFactorRequired when two-step
        verification is on and this session has not passed it (the same rules as enabling an authenticator)."""
        if self._clock.now() - active.auth_time > RECENT_SIGN_IN:
            raise ReauthRequired("sign in again to add a passkey")
        if amr_and_acr(active.methods)[1] != "mfa":
            async with self._db.transaction() as session:
                if await mfa_store.has_second_factor(session, active.user.id):
                    raise SecondFactorRequired("verify with your second factor first")

    async def registration_options(self, active: ActiveSession) -> str:
        """PublicKeyCredentialCreationOptions as JSON for navigator.credentials.create, with a new challenge
        bound to this session."""
        await self.check_may_add(active)
        user = active.user
        async with self._db.transaction() as session:
            existing = await store.list_of_user(session, user.id)
            if len(existing) >= MAX_PASSKEYS:
                raise Conflict("you have as many passkeys as can be kept")
            challenge, timeout = await self._challenge_for(session, active, REGISTER)
        options = generate_registration_options(
            rp_id=self.rp_id,
            rp_name=self._site_name,
            user_id=user.id.encode(),
            user_name=user.email,
            user_display_name=user.name or user.email,
            challenge=challenge,
            timeout=timeout,
            authenticator_selection=AuthenticatorSelectionCriteria(
                # Discoverable where the authenticator can, so the same passkey can later sign in without a password.
                resident_key=ResidentKeyRequirement.PREFERRED,
                user_verification=UserVerificationRequirement.PREFERRED,
            ),
            exclude_credentials=[
                PublicKeyCredentialDescriptor(id=base64url_to_bytes(p.credential_id)) for p in existing
            ],
        )
        return options_to_json(options)

    async def add(self, active: ActiveSession, credential: str, name: str, *, client_ip: str) -> Added:
        """Verify the browser's answer to this session's registration challenge and keep the passkey.

        The first second factor of a person turns two-step verification on, as confirming an authenticator does:
        the session becomes mfa (the new passkey was just used), everyone else signed in with the password alone
        is signed out, and backup codes are made."""
        await self.check_may_add(active)
        user = active.user
        now = self._now()
        async with self._db.transaction() as session:
            challenge = await self._live_challenge(session, active, REGISTER)
        if challenge is None:
            await self._refused(user.id, client_ip, "passkey.add_failed", "no_challenge")
            raise PasskeyRefused("no live challenge for this session")
        try:
            verified = verify_registration_response(
                credential=credential,
                expected_challenge=base64url_to_bytes(challenge),
                expected_rp_id=self.rp_id,
                expected_origin=self.origin,
                require_user_verification=False,
            )
        except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
            await self._refused(user.id, client_ip, "passkey.add_failed", type(exc).__name__)
            raise PasskeyRefused("the registration did not verify") from None
        row = Passkey(
            id=str(uuid.uuid4()),
            user_id=user.id,
            credential_id=bytes_to_base64url(verified.credential_id),
            public_key=bytes_to_base64url(verified.credential_public_key),
            sign_count=verified.sign_count,
            transports=" ".join(_transports_of(credential)),
            backup_eligible=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
            backup_state=verified.credential_backed_up,
            name=clean_name(name) or self._default_name(active),
            created_at=now,
            last_used_at=None,
        )
        cookie: str | None = None
        codes: list[str] | None = None
        async with self._db.transaction() as session:
            # The person first: the first passkey turns two-step verification on and ends their other sessions.
            await users_store.lock_person(session, user.id)
            # Used up with the passkey it let in: a second answer to the same challenge finds it gone.
            if not await store.consume_challenge(session, active.id_hash, REGISTER, challenge):
                raise PasskeyRefused("the challenge was used meanwhile")
            if await store.find_by_credential_id(session, row.credential_id) is not None:
                raise Conflict("this passkey is already registered")
            first = not await mfa_store.has_second_factor(session, user.id)
            await store.insert_passkey(session, row)
            await self._audit.record(
                session,
                "passkey.added",
                user_id=user.id,
                client_ip=client_ip,
                passkey_id=row.id,
                synced=row.backup_eligible,
                user_verified=verified.user_verified,
            )
            if first:
                codes = backup_codes.generate()
                now = self._now()
                await mfa_store.replace_backup_codes(
                    session, user.id, [backup_codes.digest(self._backup_key, c) for c in codes], now
                )
                cookie = await self._sessions.elevate(session, active, ("pwd", method_of(row)), client_ip=client_ip)
                ended = await end_sessions_and_tokens(session, user.id, now, keep=sha256_hex(cookie))
                await self._mfa.keep_fresh_codes(session, cookie, codes)
                await self._audit.record(
                    session, "mfa.enabled", user_id=user.id, client_ip=client_ip, method="passkey", **ended
                )
            await self._notices.send(
                session,
                user,
                PASSKEY_ADDED,
                now=now,
                name=row.name,
                security_url=f"{self._issuer}/account/security/passkeys",
            )
        return Added(passkey=_view(row), cookie=cookie, codes=codes)

    # -- the second step --------------------------------------------------------------------------------------

    async def authentication_options(self, active: ActiveSession) -> str | None:
        """PublicKeyCredentialRequestOptions as JSON for navigator.credentials.get, naming the person's passkeys,
        with a new challenge bound to this (pending) session; None when the person has no passkey."""
        async with self._db.transaction() as session:
            existing = await store.list_of_user(session, active.user.id)
            if not existing:
                return None
            challenge, timeout = await self._challenge_for(session, active, AUTHENTICATE)
        options = generate_authentication_options(
            rp_id=self.rp_id,
            challenge=challenge,
            timeout=timeout,
            allow_credentials=_descriptors(existing),
            user_verification=UserVerificationRequirement.PREFERRED,
        )
        return options_to_json(options)

    async def verify(
        self, active: ActiveSession, credential: str, *, client_ip: str, device: str | None = None
    ) -> SecondFactor:
        """Check an assertion against this session's challenge and one of the person's own passkeys.

        PasskeyRefused (counted against the attempt limits like a wrong code) or RateLimited. The factor's
        method is "hwk" or "swk"."""
        user = active.user
        reserved = await self._mfa.reserve_attempt(user, client_ip, device=device)
        now = self._now()
        passkey: Passkey | None = None
        async with self._db.transaction() as session:
            challenge = await self._live_challenge(session, active, AUTHENTICATE)
            credential_id = _credential_id_of(credential)
            if credential_id is not None:
                passkey = await store.find_by_credential_id(session, credential_id)
        verified, reason = self._verify_own_assertion(credential, challenge, passkey, user.id)
        if not reason:
            assert passkey is not None
            assert challenge is not None
            assert verified is not None
            new_count = verified.new_sign_count
            async with self._db.transaction() as session:
                # The challenge is used up and the counter moves together: a second answer to this challenge, or
                # one racing it on another replica, finds either gone.
                moved = await store.consume_challenge(
                    session, active.id_hash, AUTHENTICATE, challenge
                ) and await store.record_use(
                    session, passkey.id, passkey.sign_count, new_count, verified.credential_backed_up, now
                )
                if moved:
                    await self._mfa.release_attempt(session, reserved)
                    await self._audit.record(
                        session,
                        "passkey.used",
                        user_id=user.id,
                        client_ip=client_ip,
                        passkey_id=passkey.id,
                        user_verified=verified.user_verified,
                    )
            if not moved:
                reason = "used_meanwhile"
        if reason:
            await self._mfa.failed_attempt(user, client_ip, "passkey", reserved, reason=reason)
            raise PasskeyRefused(reason)
        assert passkey is not None
        return SecondFactor(method=method_of(passkey), backup_codes_left=0)

    # -- managing ------------------------------------------------------------------------------------------------

    async def rename(self, active: ActiveSession, passkey_id: str, name: str, *, client_ip: str) -> None:
        cleaned = clean_name(name)
        if not cleaned:
            raise InvalidName("a name is required")
        async with self._db.transaction() as session:
            if len(passkey_id) > 36 or not await store.rename(session, active.user.id, passkey_id, cleaned):
                raise NotFound("no such passkey of yours")
            await self._audit.record(
                session, "passkey.renamed", user_id=active.user.id, client_ip=client_ip, passkey_id=passkey_id
            )

    async def remove(self, active: ActiveSession, passkey_id: str, code: str, *, client_ip: str) -> bool:
        """Remove one of the person's passkeys; True when that turned two-step verification off.

        The last second factor goes only the way two-step verification is turned off (MfaService.disable: a valid
        current code, other sessions and tokens end), so removing it is never an easier way round that proof."""
        user_id = active.user.id
        if len(passkey_id) > 36:
            raise NotFound("no such passkey of yours")
        try:
            async with self._db.transaction() as session:
                count = await store.lock_passkeys_of_user(session, user_id)
                if await store.find_of_user(session, user_id, passkey_id) is None:
                    raise NotFound("no such passkey of yours")
                if count == 1 and not await mfa_store.has_confirmed_totp(session, user_id):
                    raise _LastFactor
                await store.delete_passkey(session, user_id, passkey_id)
                await self._audit.record(
                    session, "passkey.removed", user_id=user_id, client_ip=client_ip, passkey_id=passkey_id
                )
        except _LastFactor:
            await self._mfa.disable(active, code, client_ip=client_ip)
            return True
        return False

    # -- signing in without a password (IDP_PASSKEY_SIGNIN) -------------------------------------------------------

    def signin_options(self) -> tuple[str, str]:
        """Options for navigator.credentials.get naming no credential (the authenticator offers its discoverable
        ones, user verification required), and the browser-bound proof of the challenge to keep in a cookie.

        No session exists yet, so the challenge lives in that cookie, MACed and stamped with its expiry; it is
        made single use by recording it as spent (the sign-in continuation markers' table) when it is answered."""
        challenge = secrets.token_bytes(32)
        expires = int((self._now() + CHALLENGE_LIFETIME).timestamp())
        value = f"{bytes_to_base64url(challenge)}.{expires}"
        options = generate_authentication_options(
            rp_id=self.rp_id,
            challenge=challenge,
            timeout=int(CHALLENGE_LIFETIME.total_seconds() * 1000),
            user_verification=UserVerificationRequirement.REQUIRED,
        )
        return options_to_json(options), f"{value}.{hmac_hex(self._signin_key, value)}"

    async def sign_in(
        self, credential: str, proof: str | None, *, client_ip: str, user_agent: str = "", previous_cookie: str | None
    ) -> tuple[User, str, tuple[str, ...]]:
        """A passkey alone, with user verification (a PIN or biometric on the device): a new signed-in session.

        PasskeyRefused (one answer for every reason, the reason audited) or RateLimited."""
        now = self._now()
        challenge = self._open_proof(proof, now)
        credential_id = _credential_id_of(credential)
        async with self._db.transaction() as session:
            passkey = await store.find_by_credential_id(session, credential_id) if credential_id else None
            user = await users_store.find_user(session, passkey.user_id) if passkey else None
        if challenge is None or passkey is None or user is None:
            reason = "no_challenge" if challenge is None else "unknown_passkey"
            await self._refused(user.id if user else None, client_ip, "login.failure", reason)
            raise PasskeyRefused(reason)
        reserved = await self._mfa.reserve_attempt(user, client_ip)
        # Without a password the passkey must be two factors in one: possession and the device's own check.
        verified, reason = self._verify_assertion(
            credential, challenge, passkey, require_user_verification=True, user_handle=user.id.encode()
        )
        if not reason and user.disabled:
            reason = "disabled"
        if not reason:
            assert verified is not None
            new_count = verified.new_sign_count
            methods = (method_of(passkey),)
            async with self._db.transaction() as session:
                spent = await markers_store.use_marker(
                    session, sha256_hex("passkey-signin:" + challenge), now + CHALLENGE_LIFETIME
                )
                moved = spent and await store.record_use(
                    session, passkey.id, passkey.sign_count, new_count, verified.credential_backed_up, now
                )
                if moved:
                    await self._sessions.end(session, previous_cookie)
                    cookie = await self._sessions.create(
                        session, user, methods, client_ip=client_ip, user_agent=user_agent
                    )
                    await self._mfa.release_attempt(session, reserved)
                    await self._audit.record(
                        session,
                        "login.success",
                        user_id=user.id,
                        client_ip=client_ip,
                        methods=" ".join(methods),
                        passkey_id=passkey.id,
                    )
            if not moved:
                reason = "used_meanwhile"
        if reason:
            await self._mfa.failed_attempt(user, client_ip, "passkey", reserved, reason=reason)
            raise PasskeyRefused(reason)
        return user, cookie, methods

    def _open_proof(self, proof: str | None, now: datetime) -> str | None:
        """The challenge in a sign-in cookie made by `signin_options`, if the MAC holds and it has not expired."""
        if not proof or len(proof) > 200 or proof.count(".") != 2:
            return None
        challenge, expires, mac = proof.split(".")
        if not hmac.compare_digest(mac, hmac_hex(self._signin_key, f"{challenge}.{expires}")):
            return None
        if not expires.isdigit() or int(expires) <= now.timestamp():
            return None
        return challenge

    # -- the second factor of a password reset (/password/reset) -------------------------------------------------

    async def reset_options(self, user_id: str, token: str) -> tuple[str, str] | None:
        """Options for navigator.credentials.get naming the person's passkeys, and the proof of the challenge that
        goes back with the form: MACed, stamped with its expiry and bound to this reset link (its token's hash),
        so it answers for no other reset and no sign-in; None when the person has no passkey. The challenge is
        used up with the reset itself (`use_reset_assertion`)."""
        async with self._db.transaction() as session:
            existing = await store.list_of_user(session, user_id)
        if not existing:
            return None
        challenge = secrets.token_bytes(32)
        expires = int((self._now() + CHALLENGE_LIFETIME).timestamp())
        value = f"{bytes_to_base64url(challenge)}.{expires}"
        options = generate_authentication_options(
            rp_id=self.rp_id,
            challenge=challenge,
            timeout=int(CHALLENGE_LIFETIME.total_seconds() * 1000),
            allow_credentials=_descriptors(existing),
            user_verification=UserVerificationRequirement.PREFERRED,
        )
        return options_to_json(options), f"{value}.{self._reset_mac(token, value)}"

    async def check_reset_assertion(
        self, user: User, token: str, credential: str, proof: str, *, client_ip: str
    ) -> CheckedAssertion:
        """Check an assertion answering the challenge of this reset link's page with one of the person's own
        passkeys; nothing is written yet (the reset uses it up with the new password: `use_reset_assertion`).

        PasskeyRefused (counted against the attempt limits like a wrong code, the reason audited) or RateLimited."""
        reserved = await self._mfa.reserve_attempt(user, client_ip)
        challenge = self._open_reset_proof(token, proof)
        credential_id = _credential_id_of(credential)
        passkey: Passkey | None = None
        if challenge is not None and credential_id is not None:
            async with self._db.transaction() as session:
                passkey = await store.find_by_credential_id(session, credential_id)
        verified, reason = self._verify_own_assertion(credential, challenge, passkey, user.id)
        if reason or passkey is None or challenge is None or verified is None:
            await self._mfa.failed_attempt(user, client_ip, "passkey", reserved, reason=reason)
            raise PasskeyRefused(reason)
        return CheckedAssertion(user=user, passkey=passkey, verified=verified, challenge=challenge, reserved=reserved)

    async def use_reset_assertion(self, session: AsyncSession, checked: CheckedAssertion, *, client_ip: str) -> bool:
        """In the reset's own transaction: the challenge is spent and the sign counter moves, or False when another
        request got there first (then the caller rolls back and calls `refuse_reset_assertion`)."""
        now = self._now()
        spent = await markers_store.use_marker(
            session, sha256_hex("passkey-reset:" + checked.challenge), now + CHALLENGE_LIFETIME
        )
        moved = spent and await store.record_use(
            session,
            checked.passkey.id,
            checked.passkey.sign_count,
            checked.verified.new_sign_count,
            checked.verified.credential_backed_up,
            now,
        )
        if moved:
            await self._mfa.release_attempt(session, checked.reserved)
            await self._audit.record(
                session,
                "passkey.used",
                user_id=checked.user.id,
                client_ip=client_ip,
                passkey_id=checked.passkey.id,
                user_verified=checked.verified.user_verified,
            )
        return moved

    async def refuse_reset_assertion(self, checked: CheckedAssertion, *, client_ip: str) -> None:
        """The checked assertion lost a race to another request: it counts as a failed attempt."""
        await self._mfa.failed_attempt(checked.user, client_ip, "passkey", checked.reserved, reason="used_meanwhile")

    def _reset_mac(self, token: str, value: str) -> str:
        # Its own prefix, so a reset's proof is never a sign-in's (whose MAC covers "challenge.expires" alone).
        return hmac_hex(self._signin_key, f"password-reset.{sha256_hex(token)}.{value}")

    def _open_reset_proof(self, token: str, proof: str) -> str | None:
        """The challenge in a proof made by `reset_options` for this very link, if the MAC holds and it is live."""
        if not proof or len(proof) > 200 or proof.count(".") != 2:
            return None
        challenge, expires, mac = proof.split(".")
        if not hmac.compare_digest(mac, self._reset_mac(token, f"{challenge}.{expires}")):
            return None
        if not expires.isdigit() or int(expires) <= self._now().timestamp():
            return None
        return challenge

    # -- helpers ------------------------------------------------------------------------------------------------

    def _verify_own_assertion(
        self, credential: str, challenge: str | None, passkey: Passkey | None, owner_id: str
    ) -> tuple[VerifiedAuthentication | None, str]:
        """`_verify_assertion` for a person already known (the second step, a password reset): the assertion must
        answer a live challenge with a passkey of `owner_id`; the verified result, or None and the first reason
        it was refused."""
        if challenge is None:
            return None, "no_challenge"
        if passkey is None:
            return None, "unknown_passkey"
        if passkey.user_id != owner_id:
            return None, "passkey_of_another_person"
        return self._verify_assertion(credential, challenge, passkey, require_user_verification=False)

    def _verify_assertion(
        self,
        credential: str,
        challenge: str,
        passkey: Passkey,
        *,
        require_user_verification: bool,
        user_handle: bytes | None = None,
    ) -> tuple[VerifiedAuthentication | None, str]:
        """Check an assertion (W3C WebAuthn §7.2) against `challenge` and `passkey`: the verified result, or None
        and the reason it was refused (for the audit log). Nothing is written: the caller uses up the challenge
        and moves the counter together (`store.record_use`), so a refusal changes nothing.

        `user_handle`, when given, must match the one a discoverable credential reports (if it reports one)."""
        try:
            verified = verify_authentication_response(
                credential=credential,
                expected_challenge=base64url_to_bytes(challenge),
                expected_rp_id=self.rp_id,
                expected_origin=self.origin,
                credential_public_key=base64url_to_bytes(passkey.public_key),
                # The counter is judged below, so a clone is told apart from any other failure and audited.
                credential_current_sign_count=0,
                require_user_verification=require_user_verification,
            )
        except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
            return None, type(exc).__name__
        if user_handle is not None:
            handle = _user_handle_of(credential)
            if handle is not None and handle != user_handle:
                return None, "user_handle_mismatch"
        new_count = verified.new_sign_count
        # WebAuthn §6.1.1: a counter that does not move forward (when either is non-zero) may be a clone.
        if (new_count or passkey.sign_count) and new_count <= passkey.sign_count:
            return None, "sign_count_not_increasing"
        return verified, ""

    def _now(self) -> datetime:
        return self._clock.now()

    async def _challenge_for(self, session: AsyncSession, active: ActiveSession, purpose: str) -> tuple[bytes, int]:
        """This session's challenge for `purpose` and the milliseconds it has left: the one it holds while that
        has at least half its life ahead (a reload asks nothing new), otherwise a new one."""
        now = self._now()
        row = await store.find_challenge(session, active.id_hash, purpose)
        if row is None or now - row.created_at >= CHALLENGE_LIFETIME / 2:
            value = secrets.token_bytes(32)
            await store.put_challenge(session, active.id_hash, purpose, bytes_to_base64url(value), now)
            return value, int(CHALLENGE_LIFETIME.total_seconds() * 1000)
        left = row.created_at + CHALLENGE_LIFETIME - now
        return base64url_to_bytes(row.challenge), int(left.total_seconds() * 1000)

    async def _live_challenge(self, session: AsyncSession, active: ActiveSession, purpose: str) -> str | None:
        """The session's unexpired challenge for `purpose` (base64url), or None. It stays until an answer to it
        succeeds: a refused answer changes nothing."""
        row = await store.find_challenge(session, active.id_hash, purpose)
        if row is None or self._now() - row.created_at >= CHALLENGE_LIFETIME:
            return None
        return row.challenge

    def _default_name(self, active: ActiveSession) -> str:
        """The browser and system it was added from ("Chrome · Android"), else the date: no words to translate."""
        browser, system = describe_browser(active.user_agent)
        return " · ".join(w for w in (browser, system) if w) or self._now().strftime("%Y-%m-%d")

    async def _refused(self, user_id: str | None, client_ip: str, type_: str, reason: str) -> None:
        async with self._db.transaction() as session:
            await self._audit.record(
                session, type_, user_id=user_id, client_ip=client_ip, outcome="failure", reason=reason
            )


class _LastFactor(Exception):
    """Removing this passkey would leave the person without a second factor."""


class InvalidName(DomainError):
    """A passkey needs a name of some visible characters."""


def clean_name(name: str) -> str:
    """A name as kept: control characters out, spaces collapsed, at most MAX_NAME characters."""
    printable = "".join(c if c.isprintable() else " " for c in name)
    return " ".join(printable.split())[:MAX_NAME]


def _descriptors(passkeys: Sequence[Passkey]) -> list[PublicKeyCredentialDescriptor]:
    """The person's passkeys as an allow list, with the transports the browser reported as hints."""
    return [
        PublicKeyCredentialDescriptor(
            id=base64url_to_bytes(p.credential_id),
            transports=[AuthenticatorTransport(t) for t in p.transports.split() if t in _TRANSPORTS],
        )
        for p in passkeys
    ]


def _user_handle_of(credential: str) -> bytes | None:
    """The user handle an assertion of a discoverable credential carries (our user id), or None."""
    try:
        handle = parse_authentication_credential_json(credential).response.user_handle
    except (WebAuthnException, ValueError, TypeError, KeyError):
        return None
    return handle or None


def _transports_of(credential: str) -> list[str]:
    """The transports the browser reported for a new credential (hints for later sign-ins), known values only."""
    try:
        data: Any = json.loads(credential)
        found = data.get("response", {}).get("transports", [])
    except (ValueError, AttributeError):
        return []
    if not isinstance(found, list):
        return []
    return [t for t in found if isinstance(t, str) and t in _TRANSPORTS][:8]
