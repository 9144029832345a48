"""Token revocation (RFC 7009). Unknown tokens, and tokens of other clients, answer 200 and change nothing."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from idp.oidc.client_auth import read_token_request
from idp.oidc.errors import NO_STORE, OAuthError, UnsupportedTokenType, json_error
from idp.web.request import client_ip, services

HINTS = ("", "access_token", "refresh_token")


async def revoke(request: Request) -> Response:
    idp = services(request)
    try:
        form, client = await read_token_request(request, idp.clients)
        if form["token_type_hint"] not in HINTS:
            raise UnsupportedTokenType("token_type_hint must be access_token or refresh_token")
        await idp.grants.lookup.revoke(client, form["token"], client_ip=client_ip(request))
    except OAuthError as exc:
        return json_error(exc, basic_challenge="authorization" in request.headers)
    return Response(status_code=200, headers=NO_STORE)
