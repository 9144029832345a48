"""Token introspection (RFC 7662) for authenticated confidential clients."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from idp.oidc.client_auth import read_token_request
from idp.oidc.errors import InvalidClient, NoStoreJSONResponse, OAuthError, json_error
from idp.web.request import services


async def introspect(request: Request) -> Response:
    idp = services(request)
    try:
        form, client = await read_token_request(request, idp.clients)
        if client.public:
            raise InvalidClient("public clients may not introspect tokens")
        answer = await idp.grants.lookup.introspect(client, form["token"])
    except OAuthError as exc:
        return json_error(exc, basic_challenge="authorization" in request.headers)
    return NoStoreJSONResponse(answer)
