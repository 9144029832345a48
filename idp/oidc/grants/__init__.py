"""The token endpoint's grant handlers (RFC 6749 §4.1.3, §4.4, §6), one module per grant type, in one table.

Each handler gets the token request's form, the authenticated client (already registered for the grant), the
grant services and the caller's address, checks what is particular to its grant, and returns the token response.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from idp.oidc.grants import authorization_code, client_credentials, refresh_token
from idp.services.clients import ClientInfo
from idp.services.grants import GrantService

Handler = Callable[[dict[str, str], ClientInfo, GrantService, str], Awaitable[dict[str, Any]]]

HANDLERS: dict[str, Handler] = {
    authorization_code.GRANT_TYPE: authorization_code.handle,
    refresh_token.GRANT_TYPE: refresh_token.handle,
    client_credentials.GRANT_TYPE: client_credentials.handle,
}
