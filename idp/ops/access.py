"""Request ids, the JSON access line and request metrics, as one outermost ASGI middleware."""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from idp.logging import request_id_var
from idp.ops.metrics import UNMATCHED_ROUTE, Metrics, method_label

log = logging.getLogger("idp.access")
# nginx's code for "the client closed the request": it went away, or was cut off for sending too slowly.
CLIENT_CLOSED = 499
_INCOMING_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class AccessMiddleware:
    """Gives each request an id (echoed as X-Request-ID), times it, counts it by route, logs one line."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _INCOMING_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except ClientDisconnect:
            # No one is left to answer, and nothing failed on our side: an access line, not an error trace.
            status = CLIENT_CLOSED
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED_ROUTE
            self.metrics.observe_request(template, scope["method"], status, elapsed)
            client = scope.get("client")
            # The path only: query strings carry codes, tokens and state that must not reach a log.
            # The method is the client's own string (up to the header size limit): log it only when known.
            method = method_label(scope["method"])
            log.info(
                "%s %s %s",
                method,
                scope["path"][:200],
                status,
                extra={
                    "method": method,
                    "path": scope["path"][:200],
                    "route": template,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "client_ip": client[0] if client else "",
                },
            )
            request_id_var.reset(token)
