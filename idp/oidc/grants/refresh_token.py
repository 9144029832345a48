"""The refresh_token grant (RFC 6749 §6): a new token pair for a refresh token, which is spent (rotation)."""

from __future__ import annotations

from typing import Any

from idp.oidc.errors import InvalidRequest
from idp.services.clients import ClientInfo
from idp.services.grants import GrantService

GRANT_TYPE = "refresh_token"


async def handle(form: dict[str, str], client: ClientInfo, grants: GrantService, client_ip: str) -> dict[str, Any]:
    """Rotate `refresh_token`; an optional `scope` narrows the new access token only."""
    if not form["refresh_token"]:
        raise InvalidRequest("refresh_token is required")
    return await grants.tokens.refresh(client, form["refresh_token"], scope=form["scope"] or None, client_ip=client_ip)
