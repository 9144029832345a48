"""`idp serve`'s httptools protocol sends each response's head and body in one write, and never holds anything past
the loop's next turn: 100 Continue goes at once, an empty body and a streamed body still get their head."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from uvicorn.server import ServerState

from idp.ops.server import IdpConfig, TimedHttpToolsProtocol, http_protocol

pytestmark = pytest.mark.skipif(http_protocol() != "idp.ops.server:TimedHttpToolsProtocol", reason="needs httptools")


class Wire:
    """The socket side of a connection: records each write the protocol makes, as the kernel would see them."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def get_write_buffer_size(self) -> int:
        return 0


async def json_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    if scope["path"] == "/empty":
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await asyncio.sleep(0.05)  # the body comes later: the head must not wait for it
        await send({"type": "http.response.body", "body": b"late", "more_body": False})
        return
    body = b'{"ok":true}'
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def connect() -> tuple[TimedHttpToolsProtocol, Wire]:
    config = IdpConfig(json_app, http=http_protocol(), lifespan="off", log_config=None, access_log=False)
    config.load()
    protocol = TimedHttpToolsProtocol(config, ServerState(), {}, asyncio.get_running_loop())
    wire = Wire()
    protocol.connection_made(wire)  # type: ignore[arg-type]
    return protocol, wire


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_response_goes_out_in_one_write() -> None:
    protocol, wire = await connect()
    for _ in range(2):  # and again on the same kept-alive connection
        protocol.data_received(b"GET /token HTTP/1.1\r\nHost: x\r\n\r\n")
        await settle()
    assert len(wire.writes) == 2
    for write in wire.writes:
        assert write.startswith(b"HTTP/1.1 200 OK\r\n")
        assert write.endswith(b'\r\n\r\n{"ok":true}')
    protocol.connection_lost(None)


async def test_an_empty_body_still_sends_the_head() -> None:
    protocol, wire = await connect()
    protocol.data_received(b"GET /empty HTTP/1.1\r\nHost: x\r\n\r\n")
    await settle()
    assert [w.split(b"\r\n")[0] for w in wire.writes] == [b"HTTP/1.1 204 No Content"]
    protocol.connection_lost(None)


async def test_a_streamed_body_does_not_hold_the_head_back() -> None:
    protocol, wire = await connect()
    protocol.data_received(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    await settle()
    assert len(wire.writes) == 1  # the head, before the body exists
    assert wire.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    await asyncio.sleep(0.1)
    assert b"late" in wire.writes[-1]
    protocol.connection_lost(None)


async def test_100_continue_is_not_held() -> None:
    protocol, wire = await connect()
    protocol.data_received(b"POST /token HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
    await settle()
    assert wire.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    protocol.data_received(b"{}")
    await settle()
    assert len(wire.writes) == 2
    assert wire.writes[1].startswith(b"HTTP/1.1 200 OK\r\n")
    protocol.connection_lost(None)
