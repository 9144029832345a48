"""#10.7: JOSE input (id_token_hint) is bounded in size and nesting before anything parses it."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import Running
from tests.support.oidc import LOGOUT_URI, RegisteredClient, auth_params, make_client, pkce_pair
from tests.support.pages import PASSWORD, make_user, submit_login
from tests.support.rows import row_counts
from tests.support.wire import assert_error_page


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# Deeper than Python's JSON parser recurses (1000), yet within the 4000 characters end_session accepts.
NESTED_HEADER = _b64(b"[" * 1400 + b"]" * 1400)
NESTED_OBJECT_HEADER = _b64(b'{"alg":"RS256","kid":' + b'{"a":' * 480 + b"1" + b"}" * 481)
FLAT = _b64(b'{"alg":"RS256","kid":"k"}')
NESTED_CLAIMS = _b64(b"[" * 1400 + b"]" * 1400)
NESTED_KID_HEADER = _b64(b'{"alg":"RS256","kid":' + b"[" * 1400 + b"]" * 1400 + b"}")
HINTS = {
    "nested-kid-header": f"{NESTED_KID_HEADER}.e30.c2ln",
    "nested-array-header": f"{NESTED_HEADER}.{_b64(b'{}')}.c2ln",
    "nested-object-header": f"{NESTED_OBJECT_HEADER}.{_b64(b'{}')}.c2ln",
    "nested-claims": f"{FLAT}.{NESTED_CLAIMS}.c2ln",
    "header-not-base64": "!!!.e30.c2ln",
    "header-not-json": f"{_b64(b'not json')}.e30.c2ln",
    "header-not-utf8": f"{_b64(bytes([0xFF, 0xFE]))}.e30.c2ln",
    "header-a-list": f"{_b64(b'[1]')}.e30.c2ln",
    "four-segments": f"{FLAT}.e30.c2ln.eA",
}


@pytest.fixture
async def browser(running: Running) -> AsyncIterator[httpx.AsyncClient]:
    await make_user(running.idp)
    async with running.client() as c:
        assert (await submit_login(c, "person@example.com", PASSWORD)).status_code == 303
        yield c


@pytest.mark.parametrize("hint", HINTS.values(), ids=HINTS.keys())
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_malformed_hint_at_end_session_is_a_page(
    running: Running, browser: httpx.AsyncClient, hint: str, method: str
) -> None:
    rp = await make_client(running.idp)
    before = await row_counts(running)
    params = {"id_token_hint": hint, "post_logout_redirect_uri": LOGOUT_URI, "client_id": rp.client_id}

    if method == "GET":
        response = await browser.get("/end_session", params=params)
    else:
        response = await browser.post("/end_session", data=params)

    assert_error_page(response)
    assert await row_counts(running) == before


@pytest.mark.parametrize("hint", HINTS.values(), ids=HINTS.keys())
async def test_a_malformed_hint_at_authorize_is_not_a_crash(
    running: Running, browser: httpx.AsyncClient, hint: str
) -> None:
    rp: RegisteredClient = await make_client(running.idp)
    _, challenge = pkce_pair()

    response = await browser.get("/authorize", params=auth_params(rp, challenge, id_token_hint=hint))

    assert response.status_code < 500
