"""The one reader of request parameters: url-encoded forms, query strings and JSON bodies.

Every endpoint reads its input here, so every one refuses the same things the same way: a wrong content type,
bytes that are not UTF-8 (or not percent-encoded), a parameter given twice, a value over its length, NUL and
lone surrogates (which PostgreSQL cannot store), too many fields, and JSON nested deeper than any schema of ours.
Problems raise UnreadableInput with a reason; each edge maps it to its own wire error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

from idp.auth.tokens import json_depth
from idp.errors import UnreadableInput

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
# More fields than any form of ours has, with room for what browsers and libraries add; query strings carry
# more that is not ours (a relying party's own parameters, analytics).
EXTRA_FIELDS = 10
EXTRA_QUERY_FIELDS = 40
MAX_JSON_DEPTH = 20
# For readers that keep every parameter (the admin API's queries): the schema judges each value, this bounds it.
MAX_ANY_LENGTH = 2000


@dataclass
class Params:
    """What a lenient read found: the good values, and the names that were repeated or refused."""

    values: dict[str, str] = field(default_factory=dict)
    repeated: set[str] = field(default_factory=set)
    invalid: set[str] = field(default_factory=set)

    def strict(self) -> dict[str, str]:
        """The values, or UnreadableInput for the first repeated or refused parameter."""
        if self.repeated:
            name = sorted(self.repeated)[0]
            raise UnreadableInput(f"the field {name} was sent more than once", "repeated", name)
        if self.invalid:
            name = sorted(self.invalid)[0]
            raise UnreadableInput(f"the field {name} is too long or malformed", "too_long", name)
        return self.values


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def text_problem(value: str) -> str | None:
    """Why a decoded text cannot be taken (NUL, a lone surrogate), or None."""
    if "\x00" in value:
        return "contains a NUL character"
    if not value.isascii() and _LONE_SURROGATE.search(value):
        return "contains a lone surrogate"
    return None


def parse_urlencoded(
    data: bytes,
    limits: Mapping[str, int] | None,
    *,
    ascii_only: frozenset[str] = frozenset(),
    extra_fields: int = EXTRA_FIELDS,
) -> Params:
    """Read `name=value&...` (RFC 3986 percent-encoding of UTF-8) into Params.

    `limits` maps each wanted name to its longest value; other names are ignored. With `limits` None every
    name is kept, each up to MAX_ANY_LENGTH. Names in `ascii_only` refuse any other character.
    """
    max_fields = (len(limits) if limits is not None else 50) + extra_fields
    try:
        # Raw bytes beyond ASCII were never percent-encoded: no browser sends them.
        text = data.decode("ascii")
        pairs = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict", max_num_fields=max_fields)
    except (UnicodeDecodeError, ValueError):
        raise UnreadableInput("the parameters are not valid UTF-8 URL-encoded data", "malformed") from None
    params = Params()
    for name, value in pairs:
        if limits is not None and name not in limits:
            continue
        if limits is None and (len(name) > 100 or text_problem(name)):
            raise UnreadableInput("a parameter name is too long or malformed", "characters")
        if name in params.values or name in params.invalid:
            params.repeated.add(name)
            continue
        limit = limits[name] if limits is not None else MAX_ANY_LENGTH
        if len(value) > limit or text_problem(value) or (name in ascii_only and not value.isascii()):
            params.invalid.add(name)
            continue
        params.values[name] = value
    return params


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_form_params(
    request: Request, limits: Mapping[str, int], *, ascii_only: frozenset[str] = frozenset()
) -> Params:
    """A url-encoded form body, read leniently (see Params); UnreadableInput for the content type or bytes."""
    if _content_type(request) != FORM:
        raise UnreadableInput(f"the form must be sent as {FORM}", "content_type")
    return parse_urlencoded(await request.body(), limits, ascii_only=ascii_only)


def read_query_params(
    request: Request, limits: Mapping[str, int] | None, *, ascii_only: frozenset[str] = frozenset()
) -> Params:
    """The query string, read leniently (see Params)."""
    query = request.scope.get("query_string", b"")
    return parse_urlencoded(query, limits, ascii_only=ascii_only, extra_fields=EXTRA_QUERY_FIELDS)


def read_query_leniently(request: Request, limits: Mapping[str, int]) -> dict[str, str]:
    """The query parameters named in `limits` that could be read; a refused or unreadable one reads as absent.

    For pages whose query only shapes them (where to go next, a notice, the language): a bad value is ignored,
    never an error page."""
    try:
        return read_query_params(request, limits).values
    except UnreadableInput:
        return {}


async def read_form(request: Request, limits: Mapping[str, int]) -> dict[str, str]:
    """The form fields named in `limits` (name -> maximum length); missing ones read as "". Strict."""
    values = (await read_form_params(request, limits)).strict()
    return {name: values.get(name, "") for name in limits}


def read_query(request: Request, limits: Mapping[str, int] | None) -> dict[str, str]:
    """The query parameters named in `limits` (all of them when None), only those present. Strict."""
    return read_query_params(request, limits).strict()


async def read_json(request: Request, *, max_depth: int = MAX_JSON_DEPTH) -> dict[str, Any]:
    """A JSON object body: UTF-8, no key twice in an object, no NUL or lone surrogate in any string or key."""
    if _content_type(request) != JSON:
        raise UnreadableInput(f"the body must be {JSON}", "content_type")
    raw = await request.body()
    # Counted before parsing: a body of nested brackets is deeper than the parser can recurse.
    if json_depth(raw) > max_depth:
        raise UnreadableInput(f"the body is nested deeper than {max_depth}", "too_deep")
    try:
        data = json.loads(raw.decode("utf-8"), object_pairs_hook=_object)
    except _RepeatedKey as exc:
        raise UnreadableInput(f"the key {exc.key[:40]!r} is repeated", "repeated", exc.key[:40]) from None
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise UnreadableInput("the body is not valid JSON", "malformed") from None
    if not isinstance(data, dict):
        raise UnreadableInput("the body must be a JSON object", "shape")
    problem = _json_text_problem(data)
    if problem:
        raise UnreadableInput(f"text {problem}", "characters")
    return data


class _RepeatedKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _RepeatedKey(key)
        result[key] = value
    return result


def _json_text_problem(value: Any) -> str | None:
    """The first unstorable text anywhere in a parsed JSON value (its depth is already bounded)."""
    if isinstance(value, str):
        return text_problem(value)
    if isinstance(value, dict):
        for key, item in value.items():
            problem = text_problem(key) or _json_text_problem(item)
            if problem:
                return problem
    if isinstance(value, list):
        for item in value:
            problem = _json_text_problem(item)
            if problem:
                return problem
    return None
