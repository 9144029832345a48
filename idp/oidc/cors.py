"""CORS for the endpoints a browser-based relying party calls directly (discovery, JWKS, token, userinfo,
revocation): any origin, no cookies. The pages and the authorization endpoint get no CORS: they are navigated
to, never fetched, and the admin API is for operators' tools, not browsers."""

from __future__ import annotations

from starlette.types import Send

PATHS = frozenset({"/.well-known/openid-configuration", "/jwks", "/token", "/userinfo", "/revoke"})
ALLOW_HEADERS = "Authorization, Content-Type"
MAX_AGE = "600"


async def preflight(send: Send) -> None:
    """The answer to a CORS preflight on PATHS (idp.web.edge adds `Access-Control-Allow-Origin: *` to every other
    answer on them)."""
    await send(
        {
            "type": "http.response.start",
            "status": 204,
            "headers": [
                (b"access-control-allow-origin", b"*"),
                (b"access-control-allow-methods", b"GET, POST"),
                (b"access-control-allow-headers", ALLOW_HEADERS.encode()),
                (b"access-control-max-age", MAX_AGE.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b""})
