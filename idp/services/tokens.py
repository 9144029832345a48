"""Access, refresh and ID tokens: minted, rotated, and issued to services (RFC 6749 §4.4, §6; OIDC Core §2).

Rules authlib leaves to us: explicit lifetimes; refresh tokens rotated, with reuse revoking the whole family
(OAuth 2.0 Security BCP §4.14); client_credentials tokens never carry person scopes.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from idp.auth.tokens import new_opaque, sha256_hex
from idp.clock import Clock
from idp.config import Settings
from idp.errors import Refusal, Refused
from idp.services.audit import AuditLog
from idp.services.clients import OIDC_SCOPES, ClientInfo
from idp.services.keys import KeyRing
from idp.store import grants as store
from idp.store import users as users_store
from idp.store.db import Database
from idp.store.hot import Rotation
from idp.store.models import Token


def half_hash(value: str) -> str:
    """OIDC Core §3.1.3.6 at_hash for RS256/ES256: left half of SHA-256, base64url."""
    digest = hashlib.sha256(value.encode()).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


@dataclass(frozen=True)
class Subject:
    """Who a code or refresh token speaks for, and how they signed in."""

    user_id: str
    # The IdP session's id; None for an offline grant whose session has ended (its ID tokens carry no `sid`).
    sid: str | None
    auth_time: datetime
    amr: list[str]
    acr: str


async def _email_claims(session: AsyncSession, user_id: str) -> dict[str, Any]:
    user = await users_store.find_user(session, user_id)
    return {"email": user.email, "email_verified": user.email_verified} if user else {}


class TokenService:
    """Mints token pairs and ID tokens, rotates refresh tokens, and issues client_credentials tokens."""

    def __init__(self, db: Database, keys: KeyRing, audit: AuditLog, clock: Clock, settings: Settings) -> None:
        self._db = db
        self._keys = keys
        self._audit = audit
        self._clock = clock
        self._issuer = settings.issuer
        self._access_ttl = timedelta(seconds=settings.access_token_lifetime_seconds)
        self._id_ttl = timedelta(seconds=settings.id_token_lifetime_seconds)
        self._refresh_ttl = timedelta(seconds=settings.refresh_token_lifetime_seconds)
        self._session_idle = timedelta(seconds=settings.session_idle_seconds)

    # -- refresh tokens ------------------------------------------------------------------------------

    async def refresh(
        self, client: ClientInfo, refresh_token: str, *, scope: str | None, client_ip: str
    ) -> dict[str, Any]:
        """RFC 6749 §6 with rotation (OAuth 2.0 Security BCP §4.14): reuse revokes the family.

        An online token (no offline_access) works only while its IdP session is on (INTERFACE §3). Using it does
        not count as activity in that session: the idle limit is the person's, not the job board's."""
        now = self._clock.now()
        token_hash = sha256_hex(refresh_token)
        # The usual case in one statement (PostgreSQL: one data-modifying CTE); anything else (unknown, reused,
        # expired, too wide a scope, the person disabled) changes nothing there and is sorted out below.
        rotated = await self._rotate_in_one(client, token_hash, scope=scope, now=now)
        if rotated is not None:
            return rotated
        reused = False
        async with self._db.transaction() as session:
            used = await store.use_refresh_token(session, token_hash, client.client_id, now, now - self._session_idle)
            if used is None:
                existing = await store.find_token(session, token_hash)
                reused = (
                    existing is not None
                    and existing.kind == "refresh"
                    and existing.client_id == client.client_id
                    and existing.used_at is not None
                )
                if reused:
                    assert existing is not None
                    revoked = await store.revoke_grant(session, existing.grant_id, now)
                    await self._audit.record(
                        session,
                        "token.refresh_reuse",
                        user_id=existing.user_id,
                        actor=client.client_id,
                        client_ip=client_ip,
                        outcome="refused",
                        revoked=revoked,
                    )
            else:
                row, user_enabled, session_live, email_claims = used
                if not user_enabled:
                    raise Refused(Refusal.REFRESH_PERSON_DISABLED)
                # Checked and issued in the transaction that used the token: a concurrent reuse waits for this
                # commit and then revokes the new pair too; a refused request (expired, scope) leaves it unused.
                return await self._rotate(
                    session, client, row, scope=scope, now=now, session_live=session_live, email_claims=email_claims
                )
        # Raised after the commit: a reuse's revocation must stick.
        raise Refused(Refusal.REFRESH_UNUSABLE, "reused: family revoked" if reused else "unknown, revoked or ended")

    async def _rotate_in_one(
        self, client: ClientInfo, token_hash: str, *, scope: str | None, now: datetime
    ) -> dict[str, Any] | None:
        access = new_opaque(32)
        refresh = new_opaque(32) if "refresh_token" in client.grant_types else None
        rotated = await self._db.hot.rotate_refresh(
            Rotation(
                token_hash=token_hash,
                client_id=client.client_id,
                now=now,
                idle_before=now - self._session_idle,
                requested=tuple(scope.split()) if scope is not None else None,
                access_hash=sha256_hex(access),
                access_expires_at=now + self._access_ttl,
                refresh_hash=sha256_hex(refresh) if refresh else None,
                refresh_expires_at=now + self._refresh_ttl,
            )
        )
        if rotated is None:
            return None
        response: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": int(self._access_ttl.total_seconds()),
            "scope": rotated.scope,
        }
        if refresh:
            response["refresh_token"] = refresh
        if "openid" in rotated.scope.split():
            # An offline refresh after its session ended: the ID token omits `sid` (see _rotate).
            subject = Subject(
                rotated.user_id,
                rotated.sid if rotated.session_live else None,
                rotated.auth_time,
                rotated.amr.split(),
                rotated.acr,
            )
            extra = None
            if "email" in rotated.scope.split():
                extra = {"email": rotated.email, "email_verified": rotated.email_verified}
            response["id_token"] = await self.id_token(client, subject, nonce=None, access_token=access, extra=extra)
        return response

    async def _rotate(
        self,
        session: AsyncSession,
        client: ClientInfo,
        row: Token,
        *,
        scope: str | None,
        now: datetime,
        session_live: bool,
        email_claims: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        if row.expires_at <= now:
            raise Refused(Refusal.REFRESH_EXPIRED)
        granted = row.scope.split()
        narrowed = granted
        if scope is not None:
            requested = scope.split()
            if not set(requested) <= set(granted):
                raise Refused(Refusal.SCOPE_BEYOND_GRANT)
            narrowed = [s for s in granted if s in requested]
        assert row.user_id is not None
        assert row.auth_time is not None
        # An offline refresh after its session ended: the ID token omits `sid` (optional in OIDC Core §2 and
        # Back-Channel Logout §2.1) rather than name a dead session; the grant keeps the old sid for its family.
        subject = Subject(row.user_id, row.sid if session_live else None, row.auth_time, row.amr.split(), row.acr)
        # RFC 6749 §6: fewer scopes narrow this access token only; the rotated refresh token keeps the grant's.
        return await self.issue(
            session,
            client,
            subject,
            scope=" ".join(narrowed),
            refresh_scope=row.scope,
            grant_id=row.grant_id,
            nonce=None,
            sid=row.sid,
            email_claims=email_claims,
        )

    # -- client credentials --------------------------------------------------------------------------

    async def client_credentials(self, client: ClientInfo, *, scope: str | None) -> dict[str, Any]:
        """RFC 6749 §4.4: a service token with no person behind it, carrying only scopes the client registered;
        none asked for means all of them (§3.3 lets us default)."""
        requested = list(dict.fromkeys((scope or "").split())) or list(client.scopes)
        if any(s in OIDC_SCOPES for s in requested):
            raise Refused(Refusal.SCOPE_PERSON_IN_SERVICE_GRANT)
        unregistered = [s for s in requested if s not in client.scopes]
        if unregistered:
            raise Refused(Refusal.SCOPE_NOT_REGISTERED, f"scope {unregistered[0][:40]!r}")
        now = self._clock.now()
        access = new_opaque(32)
        # One INSERT, no transaction around it (asyncpg directly on PostgreSQL).
        await self._db.hot.insert_tokens(
            [self._token_row(access, "access", new_opaque(24), client.client_id, None, " ".join(requested), now)]
        )
        response: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": int(self._access_ttl.total_seconds()),
        }
        if requested:
            response["scope"] = " ".join(requested)
        return response

    # -- shared issuing ------------------------------------------------------------------------------

    def _token_row(
        self,
        token: str,
        kind: str,
        grant_id: str,
        client_id: str,
        subject: Subject | None,
        scope: str,
        now: datetime,
        sid: str | None = None,
    ) -> dict[str, object]:
        ttl = self._access_ttl if kind == "access" else self._refresh_ttl
        return {
            "token_hash": sha256_hex(token),
            "kind": kind,
            "grant_id": grant_id,
            "client_id": client_id,
            "user_id": subject.user_id if subject else None,
            "scope": scope,
            "sid": sid or (subject.sid if subject else None),
            "auth_time": subject.auth_time if subject else None,
            "amr": " ".join(subject.amr) if subject else "",
            "acr": subject.acr if subject else "",
            "created_at": now,
            "expires_at": now + ttl,
            "used_at": None,
            "revoked_at": None,
            "offline": kind == "refresh" and "offline_access" in scope.split(),
        }

    async def issue(
        self,
        session: AsyncSession,
        client: ClientInfo,
        subject: Subject,
        *,
        scope: str,
        grant_id: str,
        nonce: str | None,
        refresh_scope: str | None = None,
        sid: str | None = None,
        email_claims: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Mint an access token (and a refresh token, and an ID token for openid) inside the caller's transaction.

        The refresh token carries `refresh_scope` (the whole grant's) when the access token's `scope` is narrower;
        rows keep `sid` (the grant's session) even when the subject's is gone."""
        now = self._clock.now()
        access = new_opaque(32)
        rows = [self._token_row(access, "access", grant_id, client.client_id, subject, scope, now, sid)]
        refresh = None
        if "refresh_token" in client.grant_types:
            refresh = new_opaque(32)
            refresh_row = self._token_row(
                refresh, "refresh", grant_id, client.client_id, subject, refresh_scope or scope, now, sid
            )
            rows.append(refresh_row)
        response: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": int(self._access_ttl.total_seconds()),
            "scope": scope,
        }
        if refresh:
            response["refresh_token"] = refresh
        if "openid" in scope.split():
            # OIDC Core §5.4: with the email scope the ID token says the address and whether it was verified.
            extra = None
            if "email" in scope.split():
                extra = email_claims if email_claims is not None else await _email_claims(session, subject.user_id)
            response["id_token"] = await self.id_token(client, subject, nonce=nonce, access_token=access, extra=extra)
        await store.insert_tokens(session, rows)
        return response

    async def id_token(
        self,
        client: ClientInfo,
        subject: Subject,
        *,
        nonce: str | None,
        access_token: str | None,
        extra: dict[str, Any] | None = None,
    ) -> str:
        """OIDC Core §2 ID token; amr/acr/auth_time/sid carried unchanged from the sign-in."""
        now = self._clock.now()
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "sub": subject.user_id,
            "aud": client.client_id,
            "azp": client.client_id,
            "exp": int((now + self._id_ttl).timestamp()),
            "iat": int(now.timestamp()),
            "auth_time": int(subject.auth_time.timestamp()),
            "amr": subject.amr,
            "acr": subject.acr,
        }
        if subject.sid:
            claims["sid"] = subject.sid
        if nonce:
            claims["nonce"] = nonce
        if access_token:
            claims["at_hash"] = half_hash(access_token)
        claims.update(extra or {})
        return await self._keys.sign(claims, client.id_token_alg)
