"""The token endpoint (RFC 6749 §3.2): authorization_code (+ RFC 7636), refresh_token, client_credentials.

Every answer, success or error, is JSON with `Cache-Control: no-store` (§5.1, §5.2).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from idp.errors import UnreadableInput
from idp.oidc.client_auth import authenticate_client
from idp.oidc.errors import (
    NO_STORE,
    InvalidRequest,
    OAuthError,
    UnauthorizedClient,
    UnsupportedGrantType,
    json_error,
)
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
GRANTS = ("authorization_code", "refresh_token", "client_credentials")


async def token(request: Request) -> Response:
    basic = "authorization" in request.headers
    try:
        try:
            form = await read_form(request, FIELDS)
        except UnreadableInput as exc:
            raise InvalidRequest(str(exc)) from None
        return await _token(request, form)
    except OAuthError as exc:
        return json_error(exc, basic_challenge=basic)


async def _token(request: Request, form: dict[str, str]) -> Response:
    idp = services(request)
    grant_type = form["grant_type"]
    if not grant_type:
        raise InvalidRequest("grant_type is required")
    if grant_type not in GRANTS:
        raise UnsupportedGrantType(f"grant_type {grant_type[:50]!r} is not supported")
    client = (await authenticate_client(request, form, idp.clients)).client
    if grant_type not in client.grant_types:
        raise UnauthorizedClient(f"this client is not registered for {grant_type}")
    ip = client_ip(request)

    if grant_type == "authorization_code":
        if not form["code"]:
            raise InvalidRequest("code is required")
        if not form["redirect_uri"]:
            raise InvalidRequest("redirect_uri is required")
        if form["code_verifier"] and not _valid_verifier(form["code_verifier"]):
            raise InvalidRequest("code_verifier must be 43-128 characters of [A-Za-z0-9-._~] (RFC 7636 §4.1)")
        body = await idp.grants.exchange_code(
            client,
            form["code"],
            redirect_uri=form["redirect_uri"],
            code_verifier=form["code_verifier"] or None,
            client_ip=ip,
        )
    elif grant_type == "refresh_token":
        if not form["refresh_token"]:
            raise InvalidRequest("refresh_token is required")
        body = await idp.grants.refresh(client, form["refresh_token"], scope=form["scope"] or None, client_ip=ip)
    else:
        if client.public:
            raise UnauthorizedClient("public clients cannot use client_credentials")
        body = await idp.grants.client_credentials(client, scope=form["scope"] or None)
    return JSONResponse(body, headers=NO_STORE)


def _valid_verifier(verifier: str) -> bool:
    allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
    return 43 <= len(verifier) <= 128 and set(verifier) <= allowed
