"""Client authentication at the token, introspection and revocation endpoints (RFC 6749 §2.3.1).

Methods: client_secret_basic (id and secret form-urlencoded before base64, so they are decoded here),
client_secret_post, and none for public clients. Any failure is 401 invalid_client.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from urllib.parse import unquote_plus

from starlette.requests import Request

from idp.errors import UnreadableInput
from idp.oidc.errors import InvalidClient, InvalidRequest, from_unreadable
from idp.services.clients import ClientInfo, ClientService
from idp.web.params import read_form
from idp.web.request import client_ip, services


@dataclass(frozen=True)
class Authenticated:
    client: ClientInfo
    method: str


def _basic_credentials(header: str) -> tuple[str, str]:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        raise InvalidClient("unsupported Authorization scheme; use HTTP Basic")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidClient("the Authorization header is not valid base64 of client_id:client_secret") from None
    if ":" not in decoded:
        raise InvalidClient("the Authorization header must hold client_id:client_secret")
    client_id, _, secret = decoded.partition(":")
    return unquote_plus(client_id), unquote_plus(secret)


def _presented(request: Request, form: dict[str, str]) -> tuple[str, str, str]:
    """The client id, secret and method a request presents; InvalidRequest if it mixes methods."""
    header = request.headers.get("authorization")
    if header is not None:
        if form.get("client_secret"):
            raise InvalidRequest("use one client authentication method, not several")
        client_id, secret = _basic_credentials(header)
        if form.get("client_id") and form["client_id"] != client_id:
            raise InvalidRequest("client_id in the body differs from the one in the Authorization header")
        return client_id, secret, "client_secret_basic"
    client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    return client_id, secret, "client_secret_post" if secret else "none"


async def authenticate_client(request: Request, form: dict[str, str], clients: ClientService) -> Authenticated:
    """The authenticated client, or InvalidClient (401, audited). A client must use exactly one method."""
    client: ClientInfo | None = None
    try:
        client_id, secret, method = _presented(request, form)
        if not client_id:
            raise InvalidClient("client authentication is required")
        client = await clients.find(client_id)
        if client is None:
            raise InvalidClient("client authentication failed", detail="unknown client")
        if client.public:
            if method != "none":
                raise InvalidClient("client authentication failed", detail="public client sent a secret")
        elif method == "none" or not client.check_secret(secret):
            raise InvalidClient("client authentication failed", detail=f"bad credentials via {method}")
        return Authenticated(client, method)
    except InvalidClient as exc:
        await _audit_failure(request, client, exc.detail or exc.description)
        raise


async def _audit_failure(request: Request, client: ClientInfo | None, reason: str) -> None:
    """A failed client authentication in the audit log: the client id only when it names a registered client
    (a presented id may be anything, even a pasted secret), where from, and why; never the credential."""
    idp = services(request)
    async with idp.db.transaction() as session:
        await idp.audit.record(
            session,
            "client.auth_failed",
            actor=f"client:{client.client_id}" if client else "",
            client_ip=client_ip(request),
            outcome="failure",
            client_id=client.client_id if client else "",
            endpoint=request.url.path[:100],
            reason=reason,
        )


TOKEN_FIELDS = {"token": 200, "token_type_hint": 50, "client_id": 64, "client_secret": 100}


async def read_token_request(request: Request, clients: ClientService) -> tuple[dict[str, str], ClientInfo]:
    """The form and authenticated client of an introspection or revocation request (RFC 7662 §2.1, 7009 §2.1)."""
    try:
        form = await read_form(request, TOKEN_FIELDS)
    except UnreadableInput as exc:
        raise from_unreadable(exc) from None
    client = (await authenticate_client(request, form, clients)).client
    if not form["token"]:
        raise InvalidRequest("token is required")
    return form, client
