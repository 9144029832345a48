"""Codes and tokens: issue, redeem once, rotate, introspect, revoke (RFC 6749, 7636, 7662, 7009; OIDC Core).

Rules authlib leaves to us live here: codes consumed atomically and a replay revoking what the first use
issued; refresh tokens rotated with reuse revoking the whole family; explicit lifetimes; PKCE S256 only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from idp.auth.tokens import new_opaque, sha256_hex
from idp.clock import Clock
from idp.config import Settings
from idp.oidc.errors import InvalidGrant, InvalidScope, InvalidToken
from idp.services.audit import AuditLog
from idp.services.clients import OIDC_SCOPES, ClientInfo
from idp.services.keys import KeyRing
from idp.services.sessions import ActiveSession
from idp.store import grants as store
from idp.store import markers as markers_store
from idp.store.db import Database
from idp.store.hot import Rotation, TokenView, UserView
from idp.store.models import AuthorizationCode, Token


def s256(verifier: str) -> str:
    """RFC 7636 §4.2: BASE64URL(SHA256(ASCII(code_verifier))) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


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


def _check_code(
    row: AuthorizationCode, client: ClientInfo, *, redirect_uri: str, code_verifier: str | None, now: datetime
) -> InvalidGrant | None:
    """RFC 6749 §4.1.3, RFC 7636 §4.6: the code is this client's, unexpired, and the request matches it."""
    if row.client_id != client.client_id:
        return InvalidGrant("the authorization code was issued to another client")
    if row.expires_at <= now:
        return InvalidGrant("the authorization code has expired")
    if row.redirect_uri != redirect_uri:
        return InvalidGrant("redirect_uri does not match the one in the authorization request")
    if row.code_challenge is not None:
        if not code_verifier:
            return InvalidGrant("code_verifier is required (PKCE)")
        if not hmac.compare_digest(s256(code_verifier), row.code_challenge):
            return InvalidGrant("code_verifier does not match the code_challenge")
    elif code_verifier:
        return InvalidGrant("code_verifier sent but no code_challenge was in the authorization request")
    return None


class GrantService:
    """Everything that mints, checks or ends codes and tokens."""

    def __init__(self, db: Database, keys: KeyRing, audit: AuditLog, clock: Clock, settings: Settings) -> None:
        self._db = db
        self._keys = keys
        self._audit = audit
        self._clock = clock
        self._issuer = settings.issuer
        self._code_ttl = timedelta(seconds=settings.authorization_code_lifetime_seconds)
        self._access_ttl = timedelta(seconds=settings.access_token_lifetime_seconds)
        self._id_ttl = timedelta(seconds=settings.id_token_lifetime_seconds)
        self._refresh_ttl = timedelta(seconds=settings.refresh_token_lifetime_seconds)
        self._session_idle = timedelta(seconds=settings.session_idle_seconds)

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
                error: InvalidGrant | None = InvalidGrant("the authorization code is invalid or was already used")
                grant_id = await store.find_code_grant(session, code_hash)
                if grant_id is not None:
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
                error = _check_code(row, client, redirect_uri=redirect_uri, code_verifier=code_verifier, now=now)
                if error is None and consumed and not consumed[1]:
                    # INTERFACE §3: a disabled or deleted person's codes stop working; this one is burned too.
                    error = InvalidGrant("the person behind the authorization code is disabled")
            if row is not None and error is None:
                subject = Subject(row.user_id, row.sid, row.auth_time, row.amr.split(), row.acr)
                # Issued in the transaction that consumed the code: a concurrent replay waits for this commit,
                # then finds these tokens and revokes them.
                response = await self._issue(
                    session, client, subject, scope=row.scope, grant_id=row.grant_id, nonce=row.nonce
                )
        # The transaction commits even on failure: a replay's revocation, and a burned code, must stick.
        if error is not None:
            raise error
        assert response is not None
        return response

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
                row, user_enabled, session_live = used
                if not user_enabled:
                    raise InvalidGrant("the person behind the refresh token is disabled")
                # Checked and issued in the transaction that used the token: a concurrent reuse waits for this
                # commit and then revokes the new pair too; a refused request (expired, scope) leaves it unused.
                return await self._rotate(session, client, row, scope=scope, now=now, session_live=session_live)
        raise InvalidGrant("the refresh token is invalid, revoked, already used, or its sign-in session ended")

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
            response["id_token"] = await self.id_token(client, subject, nonce=None, access_token=access)
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
    ) -> dict[str, Any]:
        if row.expires_at <= now:
            raise InvalidGrant("the refresh token has expired")
        granted = row.scope.split()
        narrowed = granted
        if scope is not None:
            requested = scope.split()
            if not set(requested) <= set(granted):
                raise InvalidScope("the requested scope exceeds what was granted")
            narrowed = [s for s in granted if s in requested]
        assert row.user_id is not None
        assert row.auth_time is not None
        # An offline refresh after its session ended: the ID token omits `sid` (optional in OIDC Core §2 and
        # Back-Channel Logout §2.1) rather than name a dead session; the grant keeps the old sid for its family.
        subject = Subject(row.user_id, row.sid if session_live else None, row.auth_time, row.amr.split(), row.acr)
        # RFC 6749 §6: fewer scopes narrow this access token only; the rotated refresh token keeps the grant's.
        return await self._issue(
            session,
            client,
            subject,
            scope=" ".join(narrowed),
            refresh_scope=row.scope,
            grant_id=row.grant_id,
            nonce=None,
            sid=row.sid,
        )

    # -- client credentials --------------------------------------------------------------------------

    async def client_credentials(self, client: ClientInfo, *, scope: str | None) -> dict[str, Any]:
        """RFC 6749 §4.4: a service token with no person behind it, carrying only scopes the client registered;
        none asked for means all of them (§3.3 lets us default)."""
        requested = list(dict.fromkeys((scope or "").split())) or list(client.scopes)
        if any(s in OIDC_SCOPES for s in requested):
            raise InvalidScope("client_credentials tokens cannot carry person scopes such as openid")
        unregistered = [s for s in requested if s not in client.scopes]
        if unregistered:
            raise InvalidScope(f"this client is not registered for the scope {unregistered[0][:40]!r}")
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

    async def _issue(
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
            response["id_token"] = await self.id_token(client, subject, nonce=nonce, access_token=access)
        await store.insert_tokens(session, rows)
        return response

    async def id_token(
        self, client: ClientInfo, subject: Subject, *, nonce: str | None, access_token: str | None
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
        return await self._keys.sign(claims, client.id_token_alg)

    # -- introspection, revocation, userinfo ---------------------------------------------------------

    async def introspect(self, client: ClientInfo, token: str) -> dict[str, Any]:
        """RFC 7662 §2.2. Tokens of other clients are reported inactive, saying nothing about them."""
        if not token or len(token) > 200:
            return {"active": False}
        found = await self._db.hot.find_token_with_user(sha256_hex(token))
        if found is None:
            return {"active": False}
        row, user = found
        if not self._is_live(row, user) or row.client_id != client.client_id:
            return {"active": False}
        answer: dict[str, Any] = {
            "active": True,
            "client_id": row.client_id,
            "token_type": "Bearer" if row.kind == "access" else "refresh_token",
            "scope": row.scope,
            "exp": int(row.expires_at.timestamp()),
            "iat": int(row.created_at.timestamp()),
            "iss": self._issuer,
        }
        if row.user_id:
            answer.update(sub=row.user_id, aud=row.client_id)
            if row.acr:
                answer["acr"] = row.acr
            if row.auth_time:
                answer["auth_time"] = int(row.auth_time.timestamp())
        return answer

    async def revoke(self, client: ClientInfo, token: str, *, client_ip: str) -> None:
        """RFC 7009 §2.1: revoking a refresh token ends its family and the access tokens issued with it."""
        if not token or len(token) > 200:
            return
        now = self._clock.now()
        async with self._db.transaction() as session:
            row = await store.find_token(session, sha256_hex(token))
            if row is None or row.client_id != client.client_id:
                return
            if row.kind == "refresh":
                await store.revoke_grant(session, row.grant_id, now)
            else:
                await store.revoke_token(session, row.token_hash, now)
            await self._audit.record(
                session,
                "token.revoked",
                user_id=row.user_id,
                actor=client.client_id,
                client_ip=client_ip,
                kind=row.kind,
            )

    async def userinfo(self, access_token: str) -> dict[str, Any]:
        """OIDC Core §5.3: claims by the scopes the access token carries."""
        if not access_token or len(access_token) > 200:
            raise InvalidToken("the access token is malformed")
        found = await self._db.hot.find_token_with_user(sha256_hex(access_token))
        if found is None:
            raise InvalidToken("the access token is unknown")
        row, user = found
        if row.kind != "access" or not self._is_live(row, user) or user is None:
            raise InvalidToken("the access token is expired, revoked or not for a person")
        scopes = row.scope.split()
        if "openid" not in scopes:
            raise InvalidToken("the access token was not issued for openid")
        claims: dict[str, Any] = {"sub": user.id}
        if "email" in scopes:
            claims.update(email=user.email, email_verified=False)
        if "profile" in scopes:
            claims["name"] = user.name
        return claims

    def _is_live(self, row: TokenView, user: UserView | None) -> bool:
        if row.revoked_at is not None or row.used_at is not None or row.expires_at <= self._clock.now():
            return False
        return not (row.user_id is not None and (user is None or user.disabled))

    async def purge_expired(self) -> None:
        """Housekeeping: drop codes and tokens a day past their expiry (kept a while for reuse detection)."""
        async with self._db.transaction() as session:
            await store.purge_expired(session, self._clock.now() - timedelta(days=1))
            await markers_store.purge_expired(session, self._clock.now())

    # -- sign-in continuation markers ----------------------------------------------------------------

    async def use_marker(self, marker: str, *, expires_at: datetime) -> bool:
        """Spend a sign-in continuation marker: True the first time on any replica, False ever after."""
        async with self._db.transaction() as session:
            return await markers_store.use_marker(session, sha256_hex(marker), expires_at)

    # -- consent -------------------------------------------------------------------------------------

    async def has_consent(self, user_id: str, client_id: str, scopes: list[str]) -> bool:
        async with self._db.transaction() as session:
            consent = await store.find_consent(session, user_id, client_id)
        return consent is not None and set(scopes) <= set(consent.scope.split())

    async def save_consent(self, user_id: str, client_id: str, scopes: list[str], *, client_ip: str) -> None:
        async with self._db.transaction() as session:
            existing = await store.find_consent(session, user_id, client_id)
            merged = set(scopes) | (set(existing.scope.split()) if existing else set())
            await store.save_consent(session, user_id, client_id, " ".join(sorted(merged)), self._clock.now())
            await self._audit.record(session, "consent.granted", user_id=user_id, actor=client_id, client_ip=client_ip)
