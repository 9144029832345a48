"""Token revocation (RFC 7009). Unknown tokens, and tokens of other clients, answer 200 and change nothing."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from idp.account.forms import FormError, read_form
from idp.account.web import client_ip, services
from idp.oidc.client_auth import authenticate_client
from idp.oidc.errors import NO_STORE, InvalidRequest, OAuthError, UnsupportedTokenType, json_error

FIELDS = {"token": 200, "token_type_hint": 50, "client_id": 64, "client_secret": 100}
HINTS = ("", "access_token", "refresh_token")


async def revoke(request: Request) -> Response:
    basic = "authorization" in request.headers
    idp = services(request)
    try:
        try:
            form = await read_form(request, FIELDS)
        except FormError as exc:
            raise InvalidRequest(str(exc)) from None
        client = (await authenticate_client(request, form, idp.clients)).client
        if not form["token"]:
            raise InvalidRequest("token is required")
        if form["token_type_hint"] not in HINTS:
            raise UnsupportedTokenType("token_type_hint must be access_token or refresh_token")
        await idp.grants.revoke(client, form["token"], client_ip=client_ip(request))
    except OAuthError as exc:
        return json_error(exc, basic_challenge=basic)
    return Response(status_code=200, headers=NO_STORE)
