"""The edge every request passes first: one pure-ASGI layer instead of five (issue #12).

In one `__call__` and one `send` wrapper it does what used to be a stack of middlewares, in the same order and with
the same results: trusted proxy headers; a request id (echoed as X-Request-ID), the request's metrics and its JSON
access line; the security headers and the new CSRF cookie; the body limit (413); CORS on the public endpoints;
and the 500 answer to an unhandled exception. Then it hands the request to Starlette's router, except for the hot
protocol endpoints (discovery, JWKS, token, introspection, userinfo, revocation): those are dispatched from a table
keyed by path and method, built from the app's own routes, so they skip the router's walk over every route.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from secrets import token_hex
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from idp.logging import direct_stream, json_line, request_id_var
from idp.oidc import cors
from idp.ops.listeners import Listener, on_management_port
from idp.ops.metrics import UNMATCHED_ROUTE, Metrics, method_label
from idp.security import CSP, CookiePolicy, too_large

access_log = logging.getLogger("idp.access")
# nginx's code for "the client closed the request": it went away, or was cut off for sending too slowly.
CLIENT_CLOSED = 499
# The endpoints dispatched ahead of the router: the ones relying parties call many times a second.
HOT_PATHS = ("/.well-known/openid-configuration", "/jwks", "/token", "/introspect", "/userinfo", "/revoke")
_REQUEST_ID_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")


def _incoming_request_id(raw: bytes) -> str | None:
    """A caller's X-Request-ID when it is 1-64 of [A-Za-z0-9._-], else None (a new one is made)."""
    if not 0 < len(raw) <= 64:
        return None
    text = raw.decode("latin-1")
    return text if _REQUEST_ID_CHARACTERS.issuperset(text) else None


class BodyTooLarge(Exception):
    """A chunked body grew past the limit while being read."""


@dataclass(frozen=True, slots=True)
class _Hot:
    """A route answered ahead of the router: the Route itself (set in the scope, as the router would) and how to
    call it."""

    route: Route
    call: Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class EdgeOptions:
    """What the edge needs from the settings and the app's parts."""

    metrics: Metrics
    cookies: CookiePolicy
    hsts: bool
    management_port: int
    max_body_bytes: int
    # Exact paths allowed a larger body (an import's JSON Lines), each bounded again by its own handler.
    larger_bodies: dict[str, int] = field(default_factory=dict)
    trusted_proxies: list[str] = field(default_factory=list)


class IdpStarlette(Starlette):
    """Starlette whose middleware stack is the Edge, then any added middleware, Starlette's exception middleware
    and the router: the Edge takes the place of ServerErrorMiddleware as the outermost layer."""

    def __init__(self, *, edge: EdgeOptions, **kwargs: Any) -> None:
        self.edge = edge
        super().__init__(**kwargs)

    def build_middleware_stack(self) -> ASGIApp:
        handlers = {key: value for key, value in self.exception_handlers.items() if key not in (500, Exception)}
        app: ASGIApp = ExceptionMiddleware(self.router, handlers=handlers, debug=self.debug)
        for cls, args, kwargs in reversed(self.user_middleware):
            app = cls(app, *args, **kwargs)
        return Edge(app, self, self.edge)


class Edge:
    """The outermost ASGI layer of the app (see the module's docstring)."""

    def __init__(self, app: ASGIApp, starlette: Starlette, options: EdgeOptions) -> None:
        self.app = app
        self.starlette = starlette
        self.metrics = options.metrics
        self.cookies = options.cookies
        self.management_port = options.management_port
        self.max_body_bytes = options.max_body_bytes
        self.larger_bodies = options.larger_bodies
        hsts, trusted_proxies = options.hsts, options.trusted_proxies
        # Set in this order when the response has none of its own (the same order the middlewares used).
        defaults = [
            (b"x-frame-options", b"DENY"),
            (b"content-security-policy", CSP.encode()),
            (b"x-content-type-options", b"nosniff"),
            # Authorization codes travel in URLs: never let a Referer carry them elsewhere.
            (b"referrer-policy", b"no-referrer"),
            (b"cache-control", b"no-store"),
        ]
        if hsts:
            defaults.append((b"strict-transport-security", b"max-age=31536000"))
        self.defaults = defaults
        self.static_defaults = [
            (name, b"public, max-age=86400" if name == b"cache-control" else value) for name, value in defaults
        ]
        self._hot: dict[tuple[str, str], _Hot] | None = None
        self._pending: list[str] = []  # access lines not yet written (see _queue_line)
        self.handle: Callable[[Scope, Receive, Send], Awaitable[None]] = self._handle
        if trusted_proxies:
            # uvicorn's own reading of X-Forwarded-For/-Proto, applied before anything looks at the client.
            proxy: Any = ProxyHeadersMiddleware  # typed with uvicorn's own narrower ASGI types, not Starlette's
            self.handle = proxy(self._handle, trusted_hosts=trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        incoming = content_length = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value
            elif name == b"content-length":
                content_length = value
        request_id = (_incoming_request_id(incoming) if incoming is not None else None) or token_hex(16)
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        response_started = False
        cors_path = path in cors.PATHS
        state = scope.setdefault("state", {})
        defaults = self.static_defaults if path.startswith("/static/") else self.defaults
        request_id_header = (b"x-request-id", request_id.encode())
        json_api = path.startswith("/admin/api")

        async def edge_send(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = list(message.get("headers", ()))
                if cors_path:
                    _set(headers, b"access-control-allow-origin", b"*")
                present = {name for name, _ in headers}
                for name, value in defaults:
                    if name not in present:
                        headers.append((name, value))
                if state.get("csrf_new"):
                    headers.append((b"set-cookie", self._csrf_cookie(state["csrf_seed"])))
                headers.append(request_id_header)
                message["headers"] = headers
            await send(message)

        try:
            max_bytes = self.larger_bodies.get(path, self.max_body_bytes)
            if content_length is not None and (not content_length.isdigit() or int(content_length) > max_bytes):
                cors_path = False  # the limit's answer never carried CORS
                await too_large(edge_send, json_api)
            elif cors_path and scope["method"] == "OPTIONS" and _asks_preflight(scope):
                await cors.preflight(edge_send)
            else:
                if content_length is None:
                    # No length announced (chunked): count the body as it arrives. With one, the server never
                    # reads past it.
                    receive = _limited(receive, max_bytes)
                hot = self._hot_route(scope, path)
                if hot is None:
                    await self.app(scope, receive, edge_send)
                else:
                    scope["route"] = hot.route
                    await hot.call(scope, receive, edge_send)
        except BodyTooLarge:
            if not response_started:
                cors_path = False
                await too_large(edge_send, json_api)
        except ClientDisconnect:
            # No one is left to answer, and nothing failed on our side: an access line, not an error trace.
            status = CLIENT_CLOSED
        except Exception:
            if not response_started:
                # As Starlette's ServerErrorMiddleware answers, straight to the server (the failure is logged by
                # it, once, with the trace).
                await PlainTextResponse("Internal Server Error", status_code=500)(scope, receive, send)
            raise
        finally:
            self._access(scope, request_id, status, time.perf_counter() - started)
            request_id_var.reset(token)

    def _hot_route(self, scope: Scope, path: str) -> _Hot | None:
        if path not in HOT_PATHS or scope.get("root_path"):
            return None
        if on_management_port(scope, self.management_port):
            return None
        table = self._hot
        if table is None:
            table = self._hot = _hot_table(self.starlette)
        scope.setdefault("router", self.starlette.router)
        return table.get((path, scope["method"]))

    def _csrf_cookie(self, seed: str) -> bytes:
        cookie: SimpleCookie = SimpleCookie()
        cookie[self.cookies.csrf_name] = seed
        morsel = cookie[self.cookies.csrf_name]
        morsel["path"] = "/"
        morsel["httponly"] = True
        morsel["samesite"] = "Lax"
        if self.cookies.secure:
            morsel["secure"] = True
        return morsel.OutputString().encode("latin-1")

    def _access(self, scope: Scope, request_id: str, status: int, elapsed: float) -> None:
        """Count the request by route and write its one access line."""
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
        handler = direct_stream(access_log, logging.INFO)
        if handler is None:
            access_log.info("%s %s %s", method, path, status, extra=extra)
        else:
            line = json_line(time.time(), "INFO", access_log.name, f"{method} {path} {status}", request_id, extra)
            self._queue_line(handler, line)

    def _queue_line(self, handler: logging.StreamHandler[Any], line: str) -> None:
        """Write `line` with the others finished in this turn of the event loop: one write for them all, not a
        write (stderr is line-buffered) per request."""
        pending = self._pending
        pending.append(line)
        if len(pending) == 1:
            asyncio.get_running_loop().call_soon(self._write_pending, handler)

    def _write_pending(self, handler: logging.StreamHandler[Any]) -> None:
        lines, self._pending = self._pending, []
        _write(handler, "\n".join(lines))


def _set(headers: list[tuple[bytes, bytes]], name: bytes, value: bytes) -> None:
    """Replace the first header called `name` and drop the others, or append it (Starlette's MutableHeaders)."""
    found = [i for i, (key, _) in enumerate(headers) if key == name]
    if not found:
        headers.append((name, value))
        return
    headers[found[0]] = (name, value)
    for i in reversed(found[1:]):
        del headers[i]


def _asks_preflight(scope: Scope) -> bool:
    return any(name == b"access-control-request-method" for name, _ in scope["headers"])


def _limited(receive: Receive, max_bytes: int) -> Receive:
    received = 0

    async def limited_receive() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > max_bytes:
                raise BodyTooLarge
        return message

    return limited_receive


def _hot_table(app: Starlette) -> dict[tuple[str, str], _Hot]:
    """(path, method) -> the route the router would choose for it on the public listener, for HOT_PATHS."""
    listener = next(
        (r for r in app.router.routes if isinstance(r, Listener) and not r.management),
        None,
    )
    table: dict[tuple[str, str], _Hot] = {}
    if listener is None:
        return table
    handlers = app.exception_handlers
    for path in HOT_PATHS:
        for method in ("GET", "POST"):
            probe: Scope = {"type": "http", "path": path, "method": method, "root_path": "", "headers": []}
            route = _first_full_match(listener.routes, probe)
            if isinstance(route, Route):
                table[(path, method)] = _Hot(route, _caller(route, handlers))
    return table


def _first_full_match(routes: list[BaseRoute], scope: Scope) -> BaseRoute | None:
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route
    return None


def _caller(route: Route, handlers: dict[Any, Any]) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """How the router would run `route`, without its per-request wrapping: an ASGI endpoint as it is; a request
    handler with a Request, Starlette's HTTPException answered by the app's handler for it."""
    endpoint = route.endpoint
    if route.app is not endpoint and callable(endpoint) and not isinstance(endpoint, type):
        http_error = handlers.get(HTTPException)
        handler: Callable[[Request], Awaitable[Response]] = endpoint

        async def call(scope: Scope, receive: Receive, send: Send) -> None:
            scope["endpoint"] = endpoint
            scope["path_params"] = {}
            request = Request(scope, receive, send)
            try:
                response = await handler(request)
            except HTTPException as exc:
                if http_error is None:
                    raise
                response = await http_error(request, exc)
            await response(scope, receive, send)

        return call
    app = route.app

    async def call_app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["endpoint"] = endpoint
        scope["path_params"] = {}
        await app(scope, receive, send)

    return call_app


def _write(handler: logging.StreamHandler[Any], line: str) -> None:
    """One write of one or more lines, under the handler's lock (a worker thread may be logging at the same moment)."""
    handler.acquire()
    try:
        handler.stream.write(line + "\n")
        handler.flush()
    except Exception:
        handler.handleError(logging.makeLogRecord({"msg": "access line not written"}))
    finally:
        handler.release()
