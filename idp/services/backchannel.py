"""OpenID Connect Back-Channel Logout 1.0: queue a logout token for each client of an ended session (§2.5, §2.7),
and deliver it from the outbox as a signed JWT (§2.4) POSTed as `logout_token`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from idp.auth.tokens import new_opaque
from idp.clock import Clock
from idp.services.keys import KeyRing
from idp.services.outbox import DeliveryFailed
from idp.store import clients as clients_store
from idp.store import outbox as outbox_store
from idp.store.db import Database

KIND = "backchannel_logout"
EVENT = "http://schemas.openid.net/event/backchannel-logout"
# §2.4: the token is used at once; a short life bounds replay. Signed at each try, so a late retry is still fresh.
LOGOUT_TOKEN_LIFETIME = timedelta(minutes=2)


async def enqueue_logouts(session: AsyncSession, sids: Sequence[str], now: datetime) -> int:
    """In the transaction that ends the sessions `sids`: one logout message per client with a back-channel URI that
    got a code or tokens in one of them. The unique (kind, client, sid) key keeps it to one per session end."""
    targets = await outbox_store.clients_of_sessions(session, [s for s in sids if s])
    rows = [
        {
            "kind": KIND,
            "dedupe_key": f"{client_id} {sid}",
            # No secret here: the token is signed at delivery. jti stays the same across retries (§2.4).
            "payload": json.dumps({"client_id": client_id, "sub": user_id, "sid": sid, "jti": new_opaque(18)}),
            "created_at": now,
            "next_attempt_at": now,
            "attempts": 0,
            "last_error": "",
        }
        for client_id, user_id, sid in targets
    ]
    return await outbox_store.enqueue(session, rows)


def describe(payload: dict[str, Any]) -> dict[str, Any]:
    """What an audit entry about this message may say: who and which client, not the session id."""
    return {"user_id": payload.get("sub"), "client_id": payload.get("client_id")}


class BackchannelLogout:
    """Signs and POSTs logout tokens; raises DeliveryFailed for anything but a 2xx answer."""

    def __init__(self, db: Database, keys: KeyRing, clock: Clock, issuer: str, http: httpx.AsyncClient) -> None:
        self._db = db
        self._keys = keys
        self._clock = clock
        self._issuer = issuer
        self._http = http

    async def logout_token(self, client_id: str, alg: str, payload: dict[str, Any]) -> str:
        """§2.4: iss aud iat exp jti sub sid events, never a nonce; header typ `logout+jwt` (§2.4, RFC 8417 §2.3)."""
        now = self._clock.now()
        claims: dict[str, object] = {
            "iss": self._issuer,
            "aud": client_id,
            "iat": int(now.timestamp()),
            "exp": int((now + LOGOUT_TOKEN_LIFETIME).timestamp()),
            "jti": payload["jti"],
            "sub": payload["sub"],
            "sid": payload["sid"],
            "events": {EVENT: {}},
        }
        return await self._keys.sign(claims, alg, typ="logout+jwt")

    async def deliver(self, payload: dict[str, Any]) -> None:
        async with self._db.transaction() as session:
            client = await clients_store.find_client(session, str(payload["client_id"]))
        if client is None or not client.backchannel_logout_uri:
            return  # the client is gone or no longer asks: nothing left to tell
        token = await self.logout_token(client.client_id, client.id_token_alg, payload)
        try:
            response = await self._http.post(client.backchannel_logout_uri, data={"logout_token": token})
        except httpx.TimeoutException:
            raise DeliveryFailed("timed out") from None
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"no answer ({type(exc).__name__})") from None
        if not 200 <= response.status_code < 300:
            raise DeliveryFailed(f"answered HTTP {response.status_code}")
