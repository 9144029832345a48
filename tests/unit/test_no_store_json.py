"""The hot endpoints' JSON answer is Starlette's JSONResponse with the no-store headers, byte for byte."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.responses import JSONResponse

from idp.oidc.errors import NO_STORE, NoStoreJSONResponse


@pytest.mark.parametrize(
    "content",
    [
        {"access_token": "abc", "token_type": "Bearer", "expires_in": 600, "scope": "api"},
        {"active": False},
        {"sub": "u1", "name": "Åse Ødegård", "email": "a@example.com", "email_verified": True, "amr": ["pwd"]},
        {},
    ],
)
@pytest.mark.parametrize("status", [200, 400])
def test_same_bytes_and_headers(content: dict[str, Any], status: int) -> None:
    ours = NoStoreJSONResponse(content, status_code=status)
    theirs = JSONResponse(content, status_code=status, headers=NO_STORE)
    assert ours.status_code == theirs.status_code
    assert ours.body == theirs.body
    assert ours.raw_headers == theirs.raw_headers
    assert ours.background is None


def test_nan_is_refused_as_starlette_does() -> None:
    with pytest.raises(ValueError, match="Out of range"):
        NoStoreJSONResponse({"x": float("nan")})
    with pytest.raises(ValueError, match="Out of range"):
        JSONResponse({"x": float("nan")})
