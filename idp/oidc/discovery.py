"""OpenID Provider metadata (OIDC Discovery 1.0 §3, RFC 8414), encoded once at start-up."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response

from idp.web.request import services

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


async def discovery(request: Request) -> Response:
    body = services(request).discovery_bytes
    return Response(body, media_type="application/json", headers={"Cache-Control": CACHE})
