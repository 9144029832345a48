"""OpenID Provider metadata (OIDC Discovery 1.0 §3, RFC 8414), encoded once at start-up.

Discovery and the JWKS are served as plain ASGI endpoints from pre-encoded bytes, with a strong ETag computed once
per document (RFC 9110 §8.8.3) and 304 Not Modified for a matching If-None-Match (§13.1.2).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from starlette.types import Receive, Scope, Send

from idp.web.request import scope_services

CACHE = "public, max-age=300"
UI_LOCALES = ["en", "nb"]


def build_metadata(issuer: str) -> dict[str, object]:
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "userinfo_endpoint": f"{issuer}/userinfo",
        "jwks_uri": f"{issuer}/jwks",
        "end_session_endpoint": f"{issuer}/end_session",
        "introspection_endpoint": f"{issuer}/introspect",
        "revocation_endpoint": f"{issuer}/revoke",
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": [
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "amr",
            "acr",
            "sid",
            "azp",
            "at_hash",
            "email",
            "email_verified",
            "name",
        ],
        "acr_values_supported": ["pwd", "mfa"],
        "prompt_values_supported": ["none", "login", "consent"],
        "ui_locales_supported": UI_LOCALES,
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,
        "frontchannel_logout_supported": False,
        # Back-Channel Logout 1.0 §2.1: logout tokens carry `sid`.
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
    }


def encode_metadata(issuer: str) -> bytes:
    return json.dumps(build_metadata(issuer), separators=(",", ":")).encode()


@dataclass(frozen=True)
class Document:
    """A pre-encoded JSON document with its ETag and response headers, built once per distinct body."""

    body: bytes
    etag: bytes
    headers: list[tuple[bytes, bytes]]
    not_modified_headers: list[tuple[bytes, bytes]]

    @classmethod
    def of(cls, body: bytes, media_type: str) -> Document:
        etag = b'"' + hashlib.sha256(body).hexdigest()[:32].encode() + b'"'
        common = [(b"cache-control", CACHE.encode()), (b"etag", etag)]
        return cls(
            body,
            etag,
            [(b"content-type", media_type.encode()), (b"content-length", str(len(body)).encode()), *common],
            common,
        )

    def matches(self, if_none_match: bytes) -> bool:
        """RFC 9110 §13.1.2: weak comparison against each listed tag, or `*`."""
        if if_none_match.strip() == b"*":
            return True
        return any(tag.strip().removeprefix(b"W/") == self.etag for tag in if_none_match.split(b","))

    async def send(self, scope: Scope, send: Send) -> None:
        """Answer 200 with the body, or 304 without it when the client's copy is current."""
        for name, value in scope["headers"]:
            if name == b"if-none-match" and self.matches(value):
                await send({"type": "http.response.start", "status": 304, "headers": self.not_modified_headers})
                await send({"type": "http.response.body", "body": b""})
                return
        await send({"type": "http.response.start", "status": 200, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


class DocumentCache:
    """The Document of the current body: rebuilt only when the body object changes (a key rotation for JWKS)."""

    def __init__(self, media_type: str) -> None:
        self.media_type = media_type
        self._current: Document | None = None

    def get(self, body: bytes) -> Document:
        current = self._current
        if current is None or current.body is not body:
            current = self._current = Document.of(body, self.media_type)
        return current


class _Discovery:
    """GET /.well-known/openid-configuration (an ASGI endpoint: no Request or Response object per call)."""

    def __init__(self) -> None:
        self.cache = DocumentCache("application/json")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body: bytes = scope_services(scope).discovery_bytes
        await self.cache.get(body).send(scope, send)


discovery = _Discovery()
