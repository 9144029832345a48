"""`safe_next`: continuation URLs stay on idp's own origin, so `next` is never an open redirect."""

from __future__ import annotations

import pytest

from idp.oidc.limits import MAX_CONTINUATION
from idp.security import safe_next


@pytest.mark.parametrize(
    "target",
    ["/account", "/authorize?x=1", "/authorize?client_id=a&redirect_uri=https%3A%2F%2Frp.example%2Fcb", "/", "/a/b#c"],
)
def test_paths_on_this_origin_are_kept(target: str) -> None:
    assert safe_next(target) == target


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "http://evil.example",
        "HTTPS://evil.example",
        "//evil.example",
        "//evil.example/account",
        "/\\evil.example",
        "\\\\evil.example",
        "/\\/evil.example",
        "/account\\..\\x",
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "http:evil.example",
        "http:/evil.example",
        "evil.example",
        "account",
        "?next=/x",
        "/\t/evil.example",
        "/\n/evil.example",
        "/\r\nSet-Cookie: x=1",
        "/account\x00",
        "/account\x7f",
        " /account",
        "/" + "a" * MAX_CONTINUATION,
        "",
        None,
    ],
)
def test_anything_else_falls_back_to_the_default(target: str | None) -> None:
    assert safe_next(target) == "/account"


def test_the_default_can_be_chosen() -> None:
    assert safe_next("//evil.example", default="/") == "/"
    assert safe_next(None, default="/login") == "/login"


def test_the_longest_accepted_path() -> None:
    """As long as the longest continuation idp makes itself (idp/oidc/limits.py)."""
    longest = "/" + "a" * (MAX_CONTINUATION - 1)
    assert safe_next(longest) == longest
