"""The JSON Web Key Set (RFC 7517 §5) of every live signing key, pre-encoded by the key ring, with its ETag."""

from __future__ import annotations

from starlette.types import Receive, Scope, Send

from idp.oidc.discovery import DocumentCache
from idp.web.request import scope_services


class _Jwks:
    """GET /jwks as an ASGI endpoint; the ETag is recomputed only when the key ring's bytes change."""

    def __init__(self) -> None:
        self.cache = DocumentCache("application/jwk-set+json")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key_ring = scope_services(scope).key_ring
        # A key rotated on another replica is published here within a second, not only at the next periodic refresh.
        await key_ring.refresh_soon()
        await self.cache.get(key_ring.jwks_bytes).send(scope, send)


jwks = _Jwks()
