"""Request ids, the JSON access line and request metrics, as one outermost ASGI middleware.

The access line is the one log line every request writes, so it skips the `logging` machinery when it can: with
`idp serve`'s logging it is formatted by the same `json_line` as every other line (same fields, same redaction) and
written to the handler's stream in one write. Any other set-up (a test's capturing handler) gets a LogRecord.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from idp.logging import direct_stream, json_line, request_id_var
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
            path = scope["path"][:200]
            extra = {
                "method": method,
                "path": path,
                "route": template,
                "status": status,
                "duration_ms": round(elapsed * 1000, 2),
                "client_ip": client[0] if client else "",
            }
            handler = direct_stream(log, logging.INFO)
            if handler is None:
                log.info("%s %s %s", method, path, status, extra=extra)
            else:
                line = json_line(time.time(), "INFO", log.name, f"{method} {path} {status}", request_id, extra)
                _write(handler, line)
            request_id_var.reset(token)


def _write(handler: logging.StreamHandler[Any], line: str) -> None:
    """One write of one line, under the handler's lock (a worker thread may be logging at the same moment)."""
    handler.acquire()
    try:
        handler.stream.write(line + "\n")
        handler.flush()
    except Exception:
        handler.handleError(logging.makeLogRecord({"msg": "access line not written"}))
    finally:
        handler.release()
