"""The access line written straight to the log stream (as `idp serve` runs) is the line `logging` would write:
same fields, same redaction, one line per request."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from idp.logging import configure_logging

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
    assert (await client.get(path, headers={"x-request-id": "direct-1"})).status_code == 404
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
