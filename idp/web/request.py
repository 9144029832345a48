"""What every page and endpoint asks of a request: the services, the client's address, the session cookie."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.types import Scope

if TYPE_CHECKING:
    from idp.container import Idp


def services(request: Request) -> Idp:
    """The process's services, built once by the app's lifespan (the one reader of `app.state.idp`)."""
    return scope_services(request.scope)


def scope_services(scope: Scope) -> Idp:
    """The same services for an ASGI endpoint that answers from the scope without building a Request."""
    idp: Idp = scope["app"].state.idp
    return idp


def client_ip(request: Request) -> str:
    """The client address: the TCP peer, or what a trusted proxy said (applied by the proxy middleware)."""
    return request.client.host if request.client else ""


def session_cookie(request: Request) -> str | None:
    """The idp session cookie's value, if the browser sent one."""
    return request.cookies.get(services(request).cookies.session_name)
