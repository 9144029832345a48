"""The job board a person came from (INTERFACE §3): read from the sign-in continuation (`next`), so every page
on the way names it, shows its logo and offers "Cancel" back to it."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request

from idp.security import safe_next
from idp.services.clients import ClientInfo, image_origin
from idp.web.request import services

# idp's own pages that carry a continuation further in their own `next` (enrollment during a step-up, sign-in
# before it): looked through, at most this deep, to the authorization request at the end.
_WRAPPERS = ("/login", "/login/verify", "/login/recovery", "/account/security/totp")
_MAX_DEPTH = 3


@dataclass(frozen=True)
class Board:
    """The job board of a pending authorization request, as its pages show it."""

    name: str
    logo_uri: str
    client_uri: str
    # Why two-step verification is asked for: the board always requires it, or this request asked for it.
    requires_mfa: bool
    # The /authorize continuation that "Cancel" answers with access_denied.
    continuation: str

    @property
    def logo_origin(self) -> str | None:
        """The logo's origin for the page's CSP img-src, or None when the logo cannot be shown safely."""
        return image_origin(self.logo_uri)


def authorization_continuation(next_url: str) -> tuple[str, dict[str, list[str]]] | None:
    """The `/authorize?…` continuation inside `next_url` (looking through idp's own pages), and its query."""
    target = safe_next(next_url, default="")
    for _ in range(_MAX_DEPTH):
        if not target:
            return None
        parts = urlsplit(target)
        query = parse_qs(parts.query, keep_blank_values=True)
        if parts.path == "/authorize":
            return target, query
        if parts.path not in _WRAPPERS or len(query.get("next", [])) != 1:
            return None
        target = safe_next(query["next"][0], default="")
    return None


async def board_for(request: Request, next_url: str) -> Board | None:
    """The board of the authorization request `next_url` leads back to; None unless its client is registered and
    the redirect URI is one of that client's (the only place "Cancel" may send the person)."""
    found = authorization_continuation(next_url)
    if found is None:
        return None
    continuation, query = found
    client_ids, redirect_uris = query.get("client_id", []), query.get("redirect_uri", [])
    if len(client_ids) != 1 or len(redirect_uris) != 1:
        return None
    client = await services(request).clients.find(client_ids[0])
    if client is None or not client.allows_redirect_uri(redirect_uris[0]):
        return None
    acr_values = " ".join(query.get("acr_values", [])).split()
    asked_mfa = "mfa" in acr_values and "pwd" not in acr_values
    return board_of(client, continuation, requires_mfa=client.require_mfa or asked_mfa)


def board_of(client: ClientInfo, continuation: str, *, requires_mfa: bool) -> Board:
    return Board(
        name=client.display_name,
        logo_uri=client.logo_uri,
        client_uri=client.client_uri,
        requires_mfa=requires_mfa,
        continuation=continuation,
    )
