"""The one request-parameter reader (idp/web/params.py): what it takes and what it refuses, and why."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.requests import Request

from idp.errors import UnreadableInput
from idp.web.params import (
    MAX_ANY_LENGTH,
    parse_urlencoded,
    read_form,
    read_json,
    read_query,
)

LIMITS = {"a": 5, "b": 5}


def request(body: bytes = b"", content_type: str = "application/x-www-form-urlencoded", query: bytes = b"") -> Request:
    scope: dict[str, Any] = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "query_string": query,
        "headers": [(b"content-type", content_type.encode())],
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(scope, receive)


def test_fields_are_read_and_others_ignored() -> None:
    params = parse_urlencoded(b"a=%C3%A9&b=&c=zzz", LIMITS)
    assert params.values == {"a": "é", "b": ""}
    assert not params.repeated
    assert not params.invalid


@pytest.mark.parametrize(
    ("data", "repeated", "invalid"),
    [
        (b"a=1&a=2", {"a"}, set()),
        (b"a=123456", set(), {"a"}),
        (b"a=x%00y", set(), {"a"}),
        (b"a=123456&a=1", {"a"}, {"a"}),
    ],
)
def test_repeated_and_refused_fields_are_noted(data: bytes, repeated: set[str], invalid: set[str]) -> None:
    params = parse_urlencoded(data, LIMITS)
    assert (params.repeated, params.invalid) == (repeated, invalid)
    with pytest.raises(UnreadableInput) as caught:
        params.strict()
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "data",
    [b"a=%ff", b"a=%c3%28", b"a=%ed%a0%80", b"a=\xc3\xa9", b"&".join(b"f%d=1" % i for i in range(100))],
    ids=["not-utf8", "truncated", "surrogate", "raw-bytes", "too-many-fields"],
)
def test_unreadable_data_is_refused(data: bytes) -> None:
    with pytest.raises(UnreadableInput) as caught:
        parse_urlencoded(data, LIMITS)
    assert caught.value.kind == "malformed"


def test_ascii_only_fields() -> None:
    assert parse_urlencoded(b"a=%C3%A9", LIMITS, ascii_only=frozenset({"a"})).invalid == {"a"}


def test_without_limits_every_parameter_is_kept_within_a_bound() -> None:
    assert parse_urlencoded(b"x=1&y=2", None).values == {"x": "1", "y": "2"}
    assert parse_urlencoded(b"x=" + b"a" * (MAX_ANY_LENGTH + 1), None).invalid == {"x"}
    with pytest.raises(UnreadableInput):
        parse_urlencoded(b"x%00=1", None)


async def test_read_form_wants_a_form() -> None:
    assert await read_form(request(b"a=1"), LIMITS) == {"a": "1", "b": ""}
    with pytest.raises(UnreadableInput) as caught:
        await read_form(request(b"a=1", "text/plain"), LIMITS)
    assert caught.value.status == 415


def test_read_query() -> None:
    assert read_query(request(query=b"a=1&z=2"), LIMITS) == {"a": "1"}
    with pytest.raises(UnreadableInput):
        read_query(request(query=b"a=1&a=1"), LIMITS)


async def test_read_json_takes_an_object() -> None:
    body = {"a": [1, {"b": "é"}]}
    assert await read_json(request(json.dumps(body).encode(), "application/json")) == body


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"{", "malformed"),
        (b"\xff", "malformed"),
        (b"[1]", "shape"),
        (b"null", "shape"),
        (b'{"a": 1, "a": 2}', "repeated"),
        (b'{"a": {"b": 1, "b": 1}}', "repeated"),
        (b'{"a": "x\\u0000"}', "characters"),
        (b'{"a\\u0000": 1}', "characters"),
        (b'{"a": ["\\ud800"]}', "characters"),  # a lone surrogate: PostgreSQL cannot store it
        (b"[" * 100_000 + b"]" * 100_000, "too_deep"),
        (b'{"a": ' + b"[" * 21 + b"]" * 21 + b"}", "too_deep"),
    ],
)
async def test_read_json_refuses(body: bytes, kind: str) -> None:
    with pytest.raises(UnreadableInput) as caught:
        await read_json(request(body, "application/json"))
    assert caught.value.kind == kind


async def test_read_json_wants_json() -> None:
    with pytest.raises(UnreadableInput) as caught:
        await read_json(request(b"{}", "text/plain"))
    assert caught.value.status == 415
