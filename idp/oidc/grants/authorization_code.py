"""The authorization_code grant (RFC 6749 §4.1.3, RFC 7636 §4.5): a code, once, for the redirect URI it was
issued to, with the verifier of its PKCE challenge."""

from __future__ import annotations

from typing import Any

from idp.oidc import pkce
from idp.oidc.errors import InvalidRequest
from idp.services.clients import ClientInfo
from idp.services.grants import GrantService

GRANT_TYPE = "authorization_code"


async def handle(form: dict[str, str], client: ClientInfo, grants: GrantService, client_ip: str) -> dict[str, Any]:
    """Exchange `code` for tokens: a malformed request is invalid_request, a bad code invalid_grant."""
    if not form["code"]:
        raise InvalidRequest("code is required")
    if not form["redirect_uri"]:
        raise InvalidRequest("redirect_uri is required")
    if form["code_verifier"] and not pkce.is_valid_verifier(form["code_verifier"]):
        raise InvalidRequest("code_verifier must be 43-128 characters of [A-Za-z0-9-._~] (RFC 7636 section 4.1)")
    return await grants.codes.exchange_code(
        client,
        form["code"],
        redirect_uri=form["redirect_uri"],
        code_verifier=form["code_verifier"] or None,
        client_ip=client_ip,
    )
