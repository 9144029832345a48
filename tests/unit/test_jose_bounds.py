"""#10.7: bounding JSON nesting and compact-JWS shape before any parser recurses."""

from __future__ import annotations

import base64
import json

import pytest

from idp.auth.tokens import MAX_JWS_LENGTH, json_depth, jws_header, loads_bounded


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("1", 0),
        ("{}", 1),
        ('{"a": [1, {"b": []}]}', 4),
        ('{"a": "[[[[[[[["}', 1),  # brackets inside strings do not count
        ('{"a": "\\"[[[["}', 1),  # nor after an escaped quote
        ("[" * 5000, 5000),
    ],
)
def test_json_depth(text: str, depth: int) -> None:
    assert json_depth(text) == depth


def test_loads_bounded_refuses_deep_input_without_recursing() -> None:
    with pytest.raises(ValueError, match=r"JSON|JWS"):
        loads_bounded("[" * 100_000 + "]" * 100_000, 10)
    assert loads_bounded('{"a": [1]}', 2) == {"a": [1]}


def test_jws_header_of_a_well_formed_token() -> None:
    token = f"{_b64(json.dumps({'alg': 'RS256', 'kid': 'k1'}).encode())}.{_b64(b'{}')}.c2ln"
    assert jws_header(token) == {"alg": "RS256", "kid": "k1"}


@pytest.mark.parametrize(
    "token",
    [
        "",
        "a.b",
        "a.b.c.d",
        f"{_b64(b'[' * 3000 + b']' * 3000)}.e30.c2ln",
        f"{_b64(b'{}')}.{_b64(b'[' * 3000 + b']' * 3000)}.c2ln",
        f"{_b64(b'[]')}.e30.c2ln",
        f"{_b64(bytes([0xC3, 0x28]))}.e30.c2ln",
        "é.e30.c2ln",
        f"{_b64(b'{}')}.e30." + "A" * MAX_JWS_LENGTH,
    ],
)
def test_jws_header_refuses_what_is_not_a_bounded_compact_jws(token: str) -> None:
    with pytest.raises(ValueError, match=r"JSON|JWS"):
        jws_header(token)
