"""UserInfo (OIDC Core §5.3), GET or POST, with the bearer token in the header or a POST body (RFC 6750 §2)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from idp.errors import Refused, UnreadableInput
from idp.oidc.errors import InvalidRequest, NoStoreJSONResponse, OAuthError, bearer_error, from_refusal, from_unreadable
from idp.web.params import read_form
from idp.web.request import services


class MissingToken(InvalidRequest):
    """RFC 6750 §3.1: no credentials at all is a bare 401 challenge."""

    status_code = 401


async def userinfo(request: Request) -> Response:
    try:
        token = await _bearer_token(request)
        claims = await services(request).grants.lookup.userinfo(token)
    except Refused as exc:
        return bearer_error(from_refusal(exc))
    except OAuthError as exc:
        return bearer_error(exc)
    return NoStoreJSONResponse(claims)


async def _bearer_token(request: Request) -> str:
    header = request.headers.get("authorization")
    body_token = ""
    if request.method == "POST" and request.headers.get("content-type", "").startswith(
        "application/x-www-form-urlencoded"
    ):
        try:
            body_token = (await read_form(request, {"access_token": 200}))["access_token"]
        except UnreadableInput as exc:
            raise from_unreadable(exc) from None
    if header is not None:
        if body_token:
            raise InvalidRequest("send the access token in one place only")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise InvalidRequest("the Authorization header must be 'Bearer <token>'")
        return value.strip()
    if body_token:
        return body_token
    raise MissingToken("an access token is required")
