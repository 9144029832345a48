"""Reading an import's JSON Lines: line ends, a last line without one, a huge line cut off however it arrives."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from idp.errors import InvalidInput
from idp.services.importer import MAX_LINE_BYTES, TOO_LONG, parse_line, split_lines


async def _lines(*chunks: bytes) -> list[object]:
    async def source() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    return [line async for line in split_lines(source())]


async def test_line_ends_and_a_last_line_without_one() -> None:
    assert await _lines(b'{"a": 1}\r\n{"b"', b": 2}\n\n", b'{"c": 3}') == [b'{"a": 1}', b'{"b": 2}', b"", b'{"c": 3}']


async def test_a_huge_line_is_one_too_long_mark_whatever_the_chunks() -> None:
    huge = b"x" * (MAX_LINE_BYTES * 3)
    pieces = [huge[i : i + 1000] for i in range(0, len(huge), 1000)]
    assert await _lines(b"first\n", *pieces, b"\nlast\n") == [b"first", TOO_LONG, b"last"]
    assert await _lines(huge) == [TOO_LONG]
    assert await _lines(b"y" * MAX_LINE_BYTES + b"\n") == [b"y" * MAX_LINE_BYTES]


def test_parse_line_normalises_email_and_totp_secret() -> None:
    external = b'"external_id": {"client_id": "c", "id": 5}'
    line = parse_line(b'{"email": " Ann@Example.COM ", "totp_secret": "jbsw y3dp ehpk 3pxp", ' + external + b"}")
    assert (line.email, line.email_norm) == ("Ann@Example.COM", "ann@example.com")
    assert line.totp_secret == "JBSWY3DPEHPK3PXP"
    assert (line.client_id, line.external_id) == ("c", "5")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xff\xfe", "not UTF-8"),
        (b"[" * 5000 + b"]" * 5000, "not valid JSON"),
        (b'{"email": "a@example.com", "external_id": "42"}', "external_id must be"),
        (b'{"email": "a@example.com", "external_id": {"client_id": "c", "id": true}}', "external_id.id"),
        (b'{"email": "a@example.com", "totp_secret": "ABC"}', "16 to 205"),
        (b'{"email": "a@example.com", "password_hash": 5}', "password_hash must be a string"),
    ],
)
def test_parse_line_refusals(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason):
        parse_line(raw)
