"""CORS for the endpoints a browser-based relying party calls directly (discovery, JWKS, token, userinfo,
revocation): any origin, no cookies. The pages and the authorization endpoint get no CORS: they are navigated
to, never fetched, and the admin API is for operators' tools, not browsers."""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PATHS = frozenset({"/.well-known/openid-configuration", "/jwks", "/token", "/userinfo", "/revoke"})
ALLOW_HEADERS = "Authorization, Content-Type"
MAX_AGE = "600"


class PublicCorsMiddleware:
    """Answers preflights and adds `Access-Control-Allow-Origin: *` on PATHS only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in PATHS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
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
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["Access-Control-Allow-Origin"] = "*"
            await send(message)

        await self.app(scope, receive, send_with_cors)
