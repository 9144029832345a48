"""What a presented token is worth: introspection (RFC 7662), revocation (RFC 7009) and UserInfo (OIDC Core §5.3)."""

from __future__ import annotations

from typing import Any

from idp.auth.tokens import sha256_hex
from idp.clock import Clock
from idp.errors import Refusal, Refused
from idp.services.audit import AuditLog
from idp.services.clients import ClientInfo
from idp.store import grants as store
from idp.store.db import Database
from idp.store.hot import TokenView, UserView

# Our tokens are 43 characters; anything this long was never issued and is not worth a hash and a query.
MAX_TOKEN_LENGTH = 200


class TokenLookup:
    """Answers for tokens presented by clients (introspect, revoke) and by bearers (userinfo)."""

    def __init__(self, db: Database, audit: AuditLog, clock: Clock, issuer: str) -> None:
        self._db = db
        self._audit = audit
        self._clock = clock
        self._issuer = issuer

    async def introspect(self, client: ClientInfo, token: str) -> dict[str, Any]:
        """RFC 7662 §2.2. Tokens of other clients are reported inactive, saying nothing about them."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
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
        if not token or len(token) > MAX_TOKEN_LENGTH:
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
        if not access_token or len(access_token) > MAX_TOKEN_LENGTH:
            raise Refused(Refusal.ACCESS_MALFORMED)
        found = await self._db.hot.find_token_with_user(sha256_hex(access_token))
        if found is None:
            raise Refused(Refusal.ACCESS_UNKNOWN)
        row, user = found
        if row.kind != "access" or not self._is_live(row, user) or user is None:
            raise Refused(Refusal.ACCESS_NOT_LIVE)
        scopes = row.scope.split()
        if "openid" not in scopes:
            raise Refused(Refusal.ACCESS_NOT_OPENID)
        claims: dict[str, Any] = {"sub": user.id}
        if "email" in scopes:
            claims.update(email=user.email, email_verified=user.email_verified)
        if "profile" in scopes:
            claims["name"] = user.name
        return claims

    def _is_live(self, row: TokenView, user: UserView | None) -> bool:
        if row.revoked_at is not None or row.used_at is not None or row.expires_at <= self._clock.now():
            return False
        return not (row.user_id is not None and (user is None or user.disabled))
