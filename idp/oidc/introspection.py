"""Token introspection (RFC 7662) for authenticated confidential clients."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from idp.account.forms import FormError, read_form
from idp.account.web import services
from idp.oidc.client_auth import authenticate_client
from idp.oidc.errors import NO_STORE, InvalidClient, InvalidRequest, OAuthError, json_error

FIELDS = {"token": 200, "token_type_hint": 50, "client_id": 64, "client_secret": 100}


async def introspect(request: Request) -> Response:
    basic = "authorization" in request.headers
    idp = services(request)
    try:
        try:
            form = await read_form(request, FIELDS)
        except FormError as exc:
            raise InvalidRequest(str(exc)) from None
        client = (await authenticate_client(request, form, idp.clients)).client
        if client.public:
            raise InvalidClient("public clients may not introspect tokens")
        if not form["token"]:
            raise InvalidRequest("token is required")
        answer = await idp.grants.introspect(client, form["token"])
    except OAuthError as exc:
        return json_error(exc, basic_challenge=basic)
    return JSONResponse(answer, headers=NO_STORE)
