"""The token endpoint (RFC 6749 §3.2): authorization_code (+ RFC 7636), refresh_token, client_credentials.

Every answer, success or error, is JSON with `Cache-Control: no-store` (§5.1, §5.2).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from idp.errors import Refused, UnreadableInput
from idp.oidc.client_auth import authenticate_client
from idp.oidc.errors import (
    InvalidRequest,
    NoStoreJSONResponse,
    OAuthError,
    UnauthorizedClient,
    UnsupportedGrantType,
    from_refusal,
    from_unreadable,
    json_error,
)
from idp.oidc.grants import HANDLERS
from idp.web.params import read_form
from idp.web.request import client_ip, services

FIELDS = {
    "grant_type": 50,
    "code": 100,
    "redirect_uri": 2000,
    "code_verifier": 128,
    "refresh_token": 100,
    "scope": 500,
    "client_id": 64,
    "client_secret": 100,
}


async def token(request: Request) -> Response:
    """POST /token: read the form, authenticate the client, and hand over to the grant's handler."""
    basic = "authorization" in request.headers
    try:
        try:
            form = await read_form(request, FIELDS)
        except UnreadableInput as exc:
            raise from_unreadable(exc) from None
        try:
            return await _token(request, form)
        except Refused as exc:
            raise from_refusal(exc) from None
    except OAuthError as exc:
        return json_error(exc, basic_challenge=basic)


async def _token(request: Request, form: dict[str, str]) -> Response:
    idp = services(request)
    grant_type = form["grant_type"]
    if not grant_type:
        raise InvalidRequest("grant_type is required")
    handler = HANDLERS.get(grant_type)
    if handler is None:
        raise UnsupportedGrantType("this grant_type is not supported", detail=f"grant_type {grant_type[:50]!r}")
    client = (await authenticate_client(request, form, idp.clients)).client
    if grant_type not in client.grant_types:
        raise UnauthorizedClient("this client is not registered for this grant_type", detail=grant_type)
    body = await handler(form, client, idp.grants, client_ip(request))
    return NoStoreJSONResponse(body)
