"""`idp serve`'s HTTP server: uvicorn on two listeners (public and management), with a bound on slow requests.

uvicorn bounds idle keep-alive connections but not a request that never finishes arriving (slow or incomplete
headers or body); `TimedHttpToolsProtocol` (httptools, the fast parser) and `TimedH11Protocol` (pure Python, when
httptools is not installed) close those after IDP_REQUEST_TIMEOUT_SECONDS. The event loop is uvloop when installed
(`uvicorn[standard]` brings both); start-up logs which loop and parser run.
"""

from __future__ import annotations

import asyncio
import contextvars
import importlib.util
import logging
import socket
import sys
from typing import Any, cast

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState
from uvicorn.supervisors import Multiprocess

log = logging.getLogger("idp.server")

DEFAULT_REQUEST_TIMEOUT = 30.0
# Idle time allowed between two requests on one connection.
KEEP_ALIVE_SECONDS = 5
# Request line plus headers: far above any real browser's or RP's, well below what would matter in memory.
MAX_HEADER_BYTES = 16 * 1024
_TIMED_OUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
    b"content-length: 21\r\n\r\nrequest not received\n"
)
# States in which the client is still sending its request: the line and headers (IDLE) or the body.
_RECEIVING = (h11.IDLE, h11.SEND_BODY)


class IdpConfig(uvicorn.Config):
    """uvicorn's Config plus the request timeout; picklable, so `--workers N` processes get it too."""

    def __init__(self, app: Any, *, request_timeout: float = DEFAULT_REQUEST_TIMEOUT, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.request_timeout = request_timeout


class _RequestDeadline:
    """The clock both protocols share: armed while a request may still be arriving, stopped once it is in."""

    loop: asyncio.AbstractEventLoop
    request_timeout: float
    request_deadline: asyncio.TimerHandle | None

    def _arm(self) -> None:
        self._disarm()
        # A context of its own: the log line must not carry the request id of whatever ran last on this loop.
        self.request_deadline = self.loop.call_later(
            self.request_timeout, self._timed_out, context=contextvars.Context()
        )

    def _disarm(self) -> None:
        if self.request_deadline is not None:
            self.request_deadline.cancel()
            self.request_deadline = None

    def _timed_out(self) -> None:
        raise NotImplementedError


class TimedH11Protocol(_RequestDeadline, H11Protocol):
    """uvicorn's h11 protocol, where a request must arrive whole within the request timeout.

    The clock starts when the connection opens and again at the first byte of each later request, and stops
    when the request's last byte is in; the handling of the request is not limited by it."""

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.request_timeout: float = getattr(config, "request_timeout", DEFAULT_REQUEST_TIMEOUT)
        self.request_deadline: asyncio.TimerHandle | None = None

    # The same narrowing (BaseTransport -> Transport) as uvicorn's own H11Protocol, which ignores it too.
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()  # a connection that never sends a byte is bounded too

    def data_received(self, data: bytes) -> None:
        if self.request_deadline is None and self.conn.their_state in _RECEIVING:
            self._arm()
        super().data_received(data)

    def handle_events(self) -> None:
        super().handle_events()
        state = self.conn.their_state
        if state not in _RECEIVING:
            self._disarm()
        elif self.request_deadline is None and (state is h11.SEND_BODY or self.conn.trailing_data[0]):
            # A pipelined request that was already partly buffered when the previous response ended.
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _timed_out(self) -> None:
        self.request_deadline = None
        if self.transport.is_closing() or self.conn.their_state not in _RECEIVING:
            return
        log.info("request not received within %ss; connection closed", self.request_timeout)
        if self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):  # no response has begun on this request
            self.transport.write(_TIMED_OUT)
        # The application, if it waits for the body, gets http.disconnect from connection_lost.
        self.transport.close()


try:
    import httptools  # noqa: F401  (only whether it imports matters)
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    HAVE_HTTPTOOLS = True
except ImportError:  # pragma: no cover - uvicorn[standard] is a dependency; a bare uvicorn still serves
    HAVE_HTTPTOOLS = False
    HttpToolsProtocol = H11Protocol  # type: ignore[misc,assignment]  # the fallback only keeps the class below defined


class OneWriteTransport:
    """A connection's transport that sends a response's status line and headers together with its body.

    uvicorn writes the head and then the body as two writes: two send calls and two TCP segments per response,
    which on the token endpoints cost more kernel time than the rest of the response. The head is held until the
    next write (the body, sent by the same response a moment later) or, at the latest, the next turn of the loop;
    everything else (100 Continue, a 408, closing) goes through at once and in order."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + data)
        elif data.startswith(b"HTTP/1.1 ") and not data.startswith(b"HTTP/1.1 100 "):
            self._held = data
            self._loop.call_soon(self.flush)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HeadersTooLarge(Exception):
    """Raised from a parser callback: httptools turns it into a parser error, answered 400 and closed."""


class TimedHttpToolsProtocol(_RequestDeadline, HttpToolsProtocol):
    """uvicorn's httptools protocol with the same request timeout as `TimedH11Protocol`, and the same bound on the
    request line plus headers (MAX_HEADER_BYTES) that h11 enforces by itself."""

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.request_timeout: float = getattr(config, "request_timeout", DEFAULT_REQUEST_TIMEOUT)
        self.request_deadline: asyncio.TimerHandle | None = None
        self.receiving = False  # between the first byte of a request and its last
        self.head_bytes = 0

    # The same narrowing (BaseTransport -> Transport) as uvicorn's own HttpToolsProtocol, which ignores it too.
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # Flow control keeps the real transport (uvicorn built it above); responses go through the one-write one.
        self.transport = cast(asyncio.Transport, OneWriteTransport(transport, self.loop))
        self._arm()  # a connection that never sends a byte is bounded too

    def data_received(self, data: bytes) -> None:
        if self.request_deadline is None and not self.receiving:
            self._arm()  # the first bytes of the next request on this connection
        super().data_received(data)
        if not self.receiving and self.request_deadline is not None and self.cycle is not None:
            self._disarm()  # only whole requests (or stray bytes between them) arrived

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.receiving = True
        self.head_bytes = 0
        if self.request_deadline is None:
            self._arm()

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _count_head(self, size: int) -> None:
        self.head_bytes += size
        if self.head_bytes > MAX_HEADER_BYTES:
            raise HeadersTooLarge

    def on_message_complete(self) -> None:
        self.receiving = False
        self._disarm()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _timed_out(self) -> None:
        self.request_deadline = None
        # Nothing arrived yet on this connection, or a request is still arriving.
        if self.transport.is_closing() or not (self.receiving or self.cycle is None):
            return
        log.info("request not received within %ss; connection closed", self.request_timeout)
        if self.cycle is None or not self.cycle.response_started:  # no response has begun on this request
            self.transport.write(_TIMED_OUT)
        # The application, if it waits for the body, gets http.disconnect from connection_lost.
        self.transport.close()


def http_protocol() -> str:
    """The protocol class for uvicorn's `http` option: httptools when installed, else h11."""
    if HAVE_HTTPTOOLS:
        return "idp.ops.server:TimedHttpToolsProtocol"
    return "idp.ops.server:TimedH11Protocol"


def event_loop() -> str:
    """uvicorn's `loop` option: uvloop when installed, else asyncio."""
    return "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"


def log_stack(config: uvicorn.Config) -> None:
    """One line saying which event loop and HTTP parser serve (a plain install silently lacks the fast ones)."""
    loop = config.loop if isinstance(config.loop, str) else "custom"
    parser = "httptools" if "HttpTools" in str(config.http) else "h11"
    log.info(
        "event loop %s, HTTP parser %s (Python %s)",
        loop,
        parser,
        sys.version.split()[0],
        extra={"event_loop": loop, "http_parser": parser},
    )


def listen(host: str, port: int) -> socket.socket:
    """A bound socket for `host:port` (OSError when it is taken); uvicorn listens on it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT is no obstacle
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def serve(config: IdpConfig, sockets: list[socket.socket]) -> bool:
    """Serve on `sockets` until a signal; `config.workers` processes when more than one. False if it never started."""
    log_stack(config)
    for sock in sockets:
        host, port = sock.getsockname()[:2]
        log.info("listening on %s:%s", host, port, extra={"host": host, "port": port})
    if config.workers > 1:
        Multiprocess(config, sockets=sockets).run()
        return True
    server = uvicorn.Server(config)
    server.run(sockets=sockets)
    return server.started
