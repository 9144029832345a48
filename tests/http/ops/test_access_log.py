"""The access line written straight to the log stream (as `idp serve` runs) is the line `logging` would write:
same fields, same redaction, one line per request."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from idp.logging import configure_logging, direct_stream
from tests.conftest import Running

VARYING = {"time", "duration_ms", "request_id"}


@pytest.fixture
def served_logging() -> Iterator[tuple[logging.Handler, io.StringIO]]:
    """Logging as `idp serve` sets it up, its one handler writing to a buffer; restored afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    configure_logging("INFO")
    (handler,) = root.handlers
    stream = io.StringIO()
    handler.setStream(stream)  # type: ignore[attr-defined]
    try:
        yield handler, stream
    finally:
        root.handlers[:], root.level = saved
        logging.getLogger("uvicorn.access").disabled = False


@contextlib.contextmanager
def handler_alone(handler: logging.Handler) -> Iterator[None]:
    """Only `handler` on the root logger, as in `idp serve`: pytest adds its capturing handler for each test's
    body, which would send the access line through `logging` instead."""
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers[:] = [handler]
    try:
        yield
    finally:
        root.handlers[:] = saved


def access_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [r for r in records if r["logger"] == "idp.access"]


class _PassAll(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return True


async def test_the_direct_access_line_is_the_line_logging_writes(
    client: httpx.AsyncClient, served_logging: tuple[logging.Handler, io.StringIO]
) -> None:
    handler, stream = served_logging
    # A path shaped like a credential: redacted in the message and the path field alike.
    path = "/token=abcdef123456"
    with handler_alone(handler):
        assert direct_stream(logging.getLogger("idp.access"), logging.INFO) is handler
        assert (await client.get(path, headers={"x-request-id": "direct-1"})).status_code == 404
        await asyncio.sleep(0)  # direct lines are written at the end of the event loop's turn
    (direct,) = access_lines(stream)

    handler.addFilter(_PassAll())  # a filtered handler: the access line goes through logging instead
    stream.seek(0)
    stream.truncate()
    assert (await client.get(path, headers={"x-request-id": "direct-1"})).status_code == 404
    (through_logging,) = access_lines(stream)

    assert {k: v for k, v in direct.items() if k not in VARYING} == {
        k: v for k, v in through_logging.items() if k not in VARYING
    }
    assert list(direct) == list(through_logging)  # the same fields in the same order
    assert direct["request_id"] == "direct-1"
    assert "abcdef123456" not in json.dumps(direct)
    assert direct["path"] == "/token=[redacted]"
    assert direct["status"] == 404
    assert isinstance(direct["duration_ms"], float | int)


class _CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.access_writes = 0

    def write(self, text: str) -> int:
        self.access_writes += '"idp.access"' in text
        return super().write(text)


async def test_access_lines_finished_in_one_turn_of_the_loop_are_written_together(
    running: Running, served_logging: tuple[logging.Handler, io.StringIO]
) -> None:
    handler, _ = served_logging
    stream = _CountingStream()
    handler.setStream(stream)  # type: ignore[attr-defined]
    ids = [f"burst-{n}" for n in range(20)]
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    def scope(request_id: str) -> dict[str, Any]:
        headers = [(b"host", b"testserver"), (b"x-request-id", request_id.encode())]
        return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                "scheme": "http", "path": "/jwks", "raw_path": b"/jwks", "root_path": "", "query_string": b"",
                "headers": headers, "client": ("127.0.0.1", 5000), "server": ("testserver", 80)}  # fmt: skip

    with handler_alone(handler):
        # Twenty requests answered in the same turn of the event loop, as under load.
        await asyncio.gather(*(running.app(scope(i), receive, send) for i in ids))
        await asyncio.sleep(0)  # the turn that writes them

    assert statuses == [200] * len(ids)
    lines = access_lines(stream)
    assert sorted(line["request_id"] for line in lines) == sorted(ids)  # every line, each whole
    assert stream.access_writes < len(ids)
