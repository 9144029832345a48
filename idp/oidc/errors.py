"""OAuth 2.0 / OIDC wire errors (RFC 6749 §4.1.2.1, §5.2; OIDC Core §3.1.2.6) and the one renderer for them.

Each class carries its wire code; `description` is public and fixed per case (never request input), `detail` only
reaches the log. Domain errors from the services (idp.errors) are mapped here, at the edge.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit, urlunsplit

from starlette.responses import JSONResponse, RedirectResponse

from idp.errors import Refusal, Refused, UnreadableInput

log = logging.getLogger(__name__)

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_NO_STORE_RAW = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in NO_STORE.items()]
# Starlette's JSONResponse encoding (compact, UTF-8, no NaN), with the encoder built once: json.dumps builds one per
# call when given options.
_COMPACT_JSON = json.JSONEncoder(ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))


class NoStoreJSONResponse(JSONResponse):
    """`JSONResponse(content, headers=NO_STORE)` byte for byte, built without a header mapping or a new encoder:
    the answer of the token, introspection and userinfo endpoints."""

    def __init__(self, content: Any, status_code: int = 200) -> None:
        self.status_code = status_code
        self.background = None
        self.body = _COMPACT_JSON.encode(content).encode("utf-8")
        self.raw_headers = [
            *_NO_STORE_RAW,
            (b"content-length", str(len(self.body)).encode("latin-1")),
            (b"content-type", b"application/json"),
        ]


#: RFC 6749 §4.1.2.1, §5.2: error_description = 1*( %x20-21 / %x23-5B / %x5D-7E ), so no '"', no backslash, ASCII.
DESCRIPTION_CHARACTERS = re.compile(r"[\x20-\x21\x23-\x5b\x5d-\x7e]+")


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


#: Each domain refusal's wire error and its one public description.
REFUSALS: dict[Refusal, tuple[type[OAuthError], str]] = {
    Refusal.CODE_UNKNOWN: (InvalidGrant, "the authorization code is invalid or was already used"),
    Refusal.CODE_OTHER_CLIENT: (InvalidGrant, "the authorization code was issued to another client"),
    Refusal.CODE_EXPIRED: (InvalidGrant, "the authorization code has expired"),
    Refusal.CODE_REDIRECT_URI_MISMATCH: (
        InvalidGrant,
        "redirect_uri does not match the one in the authorization request",
    ),
    Refusal.CODE_VERIFIER_MISSING: (InvalidGrant, "code_verifier is required (PKCE)"),
    Refusal.CODE_VERIFIER_MISMATCH: (InvalidGrant, "code_verifier does not match the code_challenge"),
    Refusal.CODE_VERIFIER_UNEXPECTED: (
        InvalidGrant,
        "code_verifier sent but no code_challenge was in the authorization request",
    ),
    Refusal.CODE_PERSON_DISABLED: (InvalidGrant, "the person behind the authorization code is disabled"),
    Refusal.REFRESH_UNUSABLE: (
        InvalidGrant,
        "the refresh token is invalid, revoked, already used, or its sign-in session ended",
    ),
    Refusal.REFRESH_PERSON_DISABLED: (InvalidGrant, "the person behind the refresh token is disabled"),
    Refusal.REFRESH_EXPIRED: (InvalidGrant, "the refresh token has expired"),
    Refusal.SCOPE_BEYOND_GRANT: (InvalidScope, "the requested scope exceeds what was granted"),
    Refusal.SCOPE_PERSON_IN_SERVICE_GRANT: (
        InvalidScope,
        "client_credentials tokens cannot carry person scopes such as openid",
    ),
    Refusal.SCOPE_NOT_REGISTERED: (InvalidScope, "this client is not registered for a requested scope"),
    Refusal.ACCESS_MALFORMED: (InvalidToken, "the access token is malformed"),
    Refusal.ACCESS_UNKNOWN: (InvalidToken, "the access token is unknown"),
    Refusal.ACCESS_NOT_LIVE: (InvalidToken, "the access token is expired, revoked or not for a person"),
    Refusal.ACCESS_NOT_OPENID: (InvalidToken, "the access token was not issued for openid"),
}

#: A parameter reader's refusal (idp.web.params), by kind, as a public description.
UNREADABLE: dict[str, str] = {
    "content_type": "the body must be application/x-www-form-urlencoded",
    "malformed": "the parameters are not valid UTF-8 URL-encoded data",
    "repeated": "a parameter was sent more than once",
    "too_long": "a parameter is too long or malformed",
    "characters": "a parameter holds characters that cannot be accepted",
    "too_deep": "the body is nested too deep",
    "shape": "the body has the wrong shape",
}


def from_refusal(exc: Refused) -> OAuthError:
    """The wire error for a domain refusal: its fixed public description; the case and detail go to the log."""
    error_class, description = REFUSALS[exc.case]
    return error_class(description, detail=f"{exc.case.value}: {exc.detail}" if exc.detail else exc.case.value)


def from_unreadable(exc: UnreadableInput) -> InvalidRequest:
    """invalid_request for parameters that could not be read; the reader's own reason goes to the log."""
    return InvalidRequest(UNREADABLE.get(exc.kind, "the request could not be read"), detail=str(exc))


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


def redirect_with(redirect_uri: str, params: Mapping[str, str | None]) -> RedirectResponse:
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
