"""The JSON Web Key Set (RFC 7517 §5) of every live signing key, pre-encoded by the key ring."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from idp.oidc.discovery import CACHE
from idp.web.request import services


async def jwks(request: Request) -> Response:
    key_ring = services(request).key_ring
    # A key rotated on another replica is published here within a second, not only at the next periodic refresh.
    await key_ring.refresh_soon()
    body: bytes = key_ring.jwks_bytes
    return Response(body, media_type="application/jwk-set+json", headers={"Cache-Control": CACHE})
