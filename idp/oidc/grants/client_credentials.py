"""The client_credentials grant (RFC 6749 §4.4): a confidential client's own token, with no person behind it."""

from __future__ import annotations

from typing import Any

from idp.oidc.errors import UnauthorizedClient
from idp.services.clients import ClientInfo
from idp.services.grants import GrantService

GRANT_TYPE = "client_credentials"


async def handle(form: dict[str, str], client: ClientInfo, grants: GrantService, client_ip: str) -> dict[str, Any]:
    """A service token; a public client cannot keep the credentials this grant rests on (§4.4)."""
    if client.public:
        raise UnauthorizedClient("public clients cannot use client_credentials")
    return await grants.tokens.client_credentials(client, scope=form["scope"] or None)
