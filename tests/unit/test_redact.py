"""The redaction's shortcut (skip the patterns when no credential name occurs) never changes what it masks."""

from __future__ import annotations

import itertools

import pytest

from idp.logging import _REDACT, _REDACT_WHOLE, redact

NAMES = ["password", "PassWD", "client_secret", "TOKEN", "code", "Authorization", "cookie", "csrf_token", "name"]
SEPARATORS = ["=", ": ", '": "', " = ", " ", ""]
# Non-ASCII look-alikes the patterns' case-insensitive matching folds (U+017F long s, U+212A Kelvin sign):
# such text must take the full path.
ODD = ["pa\u017fsword=x", "coo\u212aie: a=b", "t\u00f6ken=x", "\u212aey", "s\u00e9cret=1"]


def _full(text: str) -> str:
    return _REDACT.sub(r"\1[redacted]", _REDACT_WHOLE.sub(r"\1[redacted]", text))


@pytest.mark.parametrize(
    "text",
    [f"{prefix}{name}{sep}v4lue;x" for prefix, name, sep in itertools.product(["", "/a?", "x "], NAMES, SEPARATORS)]
    + ODD
    + ["GET /token 200", "POST /login 303", "/.well-known/openid-configuration", "", "dé\x00"],
)
def test_redact_matches_the_patterns(text: str) -> None:
    assert redact(text) == _full(text)


def test_look_alikes_are_still_masked() -> None:
    assert redact("pa\u017fsword=hunter2") == "pa\u017fsword=[redacted]"
