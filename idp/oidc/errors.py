"""OAuth 2.0 / OIDC wire errors (RFC 6749 §4.1.2.1, §5.2; OIDC Core §3.1.2.6) and the one renderer for them.

Each class carries its wire code; `description` is public, `detail` only reaches the log.
"""

from __future__ import annotations

import logging
from typing import ClassVar
from urllib.parse import urlencode, urlsplit, urlunsplit

from starlette.responses import JSONResponse, RedirectResponse

log = logging.getLogger(__name__)

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthError(Exception):
    """Base of all protocol errors."""

    error: ClassVar[str] = "server_error"
    status_code: ClassVar[int] = 400

    def __init__(self, description: str, detail: str = "") -> None:
        super().__init__(description)
        self.description = description
        self.detail = detail


class InvalidRequest(OAuthError):
    """The request is missing a parameter, repeats one, or is otherwise malformed."""

    error = "invalid_request"


class InvalidClient(OAuthError):
    """Client authentication failed (unknown client, wrong or missing credentials)."""

    error = "invalid_client"
    status_code = 401


class InvalidGrant(OAuthError):
    """The code or refresh token is invalid, expired, revoked, used, or issued to another client."""

    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    """The client is not registered for this grant type."""

    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"


class UnsupportedResponseType(OAuthError):
    error = "unsupported_response_type"


class InvalidScope(OAuthError):
    error = "invalid_scope"


class AccessDenied(OAuthError):
    error = "access_denied"


class LoginRequired(OAuthError):
    """OIDC Core §3.1.2.6: prompt=none and the person must sign in."""

    error = "login_required"


class InteractionRequired(OAuthError):
    error = "interaction_required"


class ConsentRequired(OAuthError):
    error = "consent_required"


class InvalidToken(OAuthError):
    """RFC 6750 §3.1: the access token is expired, revoked, malformed or unknown."""

    error = "invalid_token"
    status_code = 401


class UnsupportedTokenType(OAuthError):
    error = "unsupported_token_type"


def json_error(exc: OAuthError, *, basic_challenge: bool = False) -> JSONResponse:
    """RFC 6749 §5.2 JSON, never cached; a 401 after HTTP Basic carries a challenge (§5.2, RFC 7235)."""
    log.info("oauth error", extra={"error": exc.error, "detail": exc.detail or exc.description})
    headers = dict(NO_STORE)
    if exc.status_code == 401 and basic_challenge:
        headers["WWW-Authenticate"] = 'Basic realm="idp"'
    return JSONResponse(
        {"error": exc.error, "error_description": exc.description}, status_code=exc.status_code, headers=headers
    )


def bearer_error(exc: OAuthError) -> JSONResponse:
    """RFC 6750 §3: the error rides in WWW-Authenticate as well as the body."""
    log.info("bearer error", extra={"error": exc.error, "detail": exc.detail or exc.description})
    challenge = f'Bearer realm="idp", error="{exc.error}", error_description="{exc.description}"'
    if exc.error == "invalid_request" and exc.status_code == 401:
        challenge = 'Bearer realm="idp"'
    return JSONResponse(
        {"error": exc.error, "error_description": exc.description},
        status_code=exc.status_code,
        headers={**NO_STORE, "WWW-Authenticate": challenge},
    )


def redirect_with(redirect_uri: str, params: dict[str, str | None]) -> RedirectResponse:
    """Redirect to `redirect_uri` with `params` added to its query (keeping the query it registered)."""
    parts = urlsplit(redirect_uri)
    extra = urlencode({k: v for k, v in params.items() if v is not None})
    query = f"{parts.query}&{extra}" if parts.query else extra
    return RedirectResponse(urlunsplit(parts._replace(query=query)), status_code=303, headers=NO_STORE)


def redirect_error(exc: OAuthError, redirect_uri: str, *, state: str | None, issuer: str) -> RedirectResponse:
    """An authorization error sent back to the relying party, with `state` and RFC 9207 `iss`."""
    log.info("authorization error", extra={"error": exc.error, "detail": exc.detail or exc.description})
    return redirect_with(
        redirect_uri,
        {"error": exc.error, "error_description": exc.description, "state": state, "iss": issuer},
    )
