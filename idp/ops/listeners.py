"""The two listeners of one process (INTERFACE §2, §6): the public one, and the management port for `/metrics`,
`/healthz` and `/readyz`, told apart by the local port a request arrived on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.datastructures import URLPath
from starlette.routing import BaseRoute, Match, Router
from starlette.types import Receive, Scope, Send


def on_management_port(scope: Scope, management_port: int) -> bool:
    """True when the request came in on the management listener (never when it is off: port 0)."""
    server = scope.get("server")
    return management_port != 0 and server is not None and server[1] == management_port


class Listener(BaseRoute):
    """The routes of one listener. It matches by the server's own port, which a client cannot choose by any
    header, so nothing on the public port reaches the management routes."""

    def __init__(self, routes: Sequence[BaseRoute], *, management_port: int, management: bool) -> None:
        self.router = Router(routes=list(routes))
        self.management_port = management_port
        self.management = management

    @property
    def routes(self) -> list[BaseRoute]:
        return self.router.routes

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] not in ("http", "websocket"):
            return Match.NONE, {}
        if on_management_port(scope, self.management_port) == self.management:
            return Match.FULL, {}
        return Match.NONE, {}

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        return self.router.url_path_for(name, **path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.router(scope, receive, send)
