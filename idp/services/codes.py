"""Authorization codes, consent and sign-in continuation markers: what the authorization endpoint leaves behind
(RFC 6749 §4.1, RFC 7636 §4.6; OIDC Core §3.1.3).

A code is consumed atomically, exchanged once, and a replay revokes what the first exchange issued (RFC 6749
§4.1.2); PKCE is S256 only (idp.oidc.pkce).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from idp.auth.tokens import new_opaque, sha256_hex
from idp.clock import Clock
from idp.config import Settings
from idp.errors import Refusal, Refused
from idp.oidc import pkce
from idp.services.audit import AuditLog
from idp.services.clients import ClientInfo
from idp.services.sessions import ActiveSession
from idp.services.tokens import Subject, TokenService
from idp.store import grants as store
from idp.store import markers as markers_store
from idp.store.db import Database
from idp.store.models import AuthorizationCode


def _code_refusal(
    row: AuthorizationCode, client: ClientInfo, *, redirect_uri: str, code_verifier: str | None, now: datetime
) -> Refused | None:
    """RFC 6749 §4.1.3, RFC 7636 §4.6: the code is this client's, unexpired, and the request matches it."""
    if row.client_id != client.client_id:
        return Refused(Refusal.CODE_OTHER_CLIENT)
    if row.expires_at <= now:
        return Refused(Refusal.CODE_EXPIRED)
    if row.redirect_uri != redirect_uri:
        return Refused(Refusal.CODE_REDIRECT_URI_MISMATCH)
    if row.code_challenge is not None:
        if not code_verifier:
            return Refused(Refusal.CODE_VERIFIER_MISSING)
        if not pkce.verify_s256(code_verifier, row.code_challenge):
            return Refused(Refusal.CODE_VERIFIER_MISMATCH)
    elif code_verifier:
        return Refused(Refusal.CODE_VERIFIER_UNEXPECTED)
    return None


class CodeService:
    """Issues and redeems authorization codes; keeps consent and spent continuation markers."""

    def __init__(self, db: Database, tokens: TokenService, audit: AuditLog, clock: Clock, settings: Settings) -> None:
        self._db = db
        self._tokens = tokens
        self._audit = audit
        self._clock = clock
        self._code_ttl = timedelta(seconds=settings.authorization_code_lifetime_seconds)

    # -- authorization codes -------------------------------------------------------------------------

    async def issue_code(
        self,
        client: ClientInfo,
        active: ActiveSession,
        *,
        redirect_uri: str,
        scope: str,
        nonce: str | None,
        code_challenge: str | None,
        amr: list[str],
        acr: str,
    ) -> str:
        """A new single-use code for this sign-in and request; only its hash is stored."""
        code = new_opaque(32)
        now = self._clock.now()
        # One INSERT: no transaction around it.
        await self._db.write_one(
            lambda session: store.insert_code(
                session,
                {
                    "code_hash": sha256_hex(code),
                    "grant_id": new_opaque(24),
                    "client_id": client.client_id,
                    "user_id": active.user.id,
                    "redirect_uri": redirect_uri,
                    "scope": scope,
                    "nonce": nonce,
                    "code_challenge": code_challenge,
                    "sid": active.sid,
                    "auth_time": active.auth_time,
                    "amr": " ".join(amr),
                    "acr": acr,
                    "created_at": now,
                    "expires_at": now + self._code_ttl,
                },
            )
        )
        return code

    async def exchange_code(
        self, client: ClientInfo, code: str, *, redirect_uri: str, code_verifier: str | None, client_ip: str
    ) -> dict[str, Any]:
        """RFC 6749 §4.1.3 with RFC 7636 §4.6: one use only; a second use revokes what the first issued."""
        now = self._clock.now()
        code_hash = sha256_hex(code)
        response: dict[str, Any] | None = None
        async with self._db.transaction() as session:
            consumed = await store.consume_code(session, code_hash, now)
            row = consumed[0] if consumed else None
            if row is None:
                error: Refused | None = Refused(Refusal.CODE_UNKNOWN)
                grant_id = await store.find_code_grant(session, code_hash)
                if grant_id is not None:
                    error = Refused(Refusal.CODE_UNKNOWN, "replayed: its grant is revoked")
                    revoked = await store.revoke_grant(session, grant_id, now)
                    await self._audit.record(
                        session,
                        "token.code_replay",
                        actor=client.client_id,
                        client_ip=client_ip,
                        outcome="refused",
                        revoked=revoked,
                    )
            else:
                error = _code_refusal(row, client, redirect_uri=redirect_uri, code_verifier=code_verifier, now=now)
                if error is None and consumed and not consumed[1]:
                    # INTERFACE §3: a disabled or deleted person's codes stop working; this one is burned too.
                    error = Refused(Refusal.CODE_PERSON_DISABLED)
            if row is not None and error is None:
                subject = Subject(row.user_id, row.sid, row.auth_time, row.amr.split(), row.acr)
                # Issued in the transaction that consumed the code: a concurrent replay waits for this commit,
                # then finds these tokens and revokes them.
                response = await self._tokens.issue(
                    session,
                    client,
                    subject,
                    scope=row.scope,
                    grant_id=row.grant_id,
                    nonce=row.nonce,
                    email_claims=consumed[2] if consumed else None,
                )
        # The transaction commits even on failure: a replay's revocation, and a burned code, must stick.
        if error is not None:
            raise error
        assert response is not None
        return response

    # -- sign-in continuation markers ----------------------------------------------------------------

    async def use_marker(self, marker: str, *, expires_at: datetime) -> bool:
        """Spend a sign-in continuation marker: True the first time on any replica, False ever after."""
        async with self._db.transaction() as session:
            return await markers_store.use_marker(session, sha256_hex(marker), expires_at)

    # -- consent -------------------------------------------------------------------------------------

    async def has_consent(self, user_id: str, client_id: str, scopes: list[str]) -> bool:
        """Whether the person has already allowed this client every one of `scopes`."""
        async with self._db.transaction() as session:
            consent = await store.find_consent(session, user_id, client_id)
        return consent is not None and set(scopes) <= set(consent.scope.split())

    async def save_consent(self, user_id: str, client_id: str, scopes: list[str], *, client_ip: str) -> None:
        """Add `scopes` to what the person allows this client, and audit it."""
        async with self._db.transaction() as session:
            existing = await store.find_consent(session, user_id, client_id)
            merged = set(scopes) | (set(existing.scope.split()) if existing else set())
            await store.save_consent(session, user_id, client_id, " ".join(sorted(merged)), self._clock.now())
            await self._audit.record(session, "consent.granted", user_id=user_id, actor=client_id, client_ip=client_ip)
