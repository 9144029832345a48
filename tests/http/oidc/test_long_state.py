"""A relying party's long `state` survives the sign-in detour: /authorize -> /login (-> /login/verify) ->
/authorize -> the board's redirect_uri, with the state exactly as sent (the continuation limit derives from
the authorization request's own limits, idp/oidc/limits.py)."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import httpx
import pytest

from idp.clock import FrozenClock
from idp.oidc.limits import AUTHORIZE_LIMITS, MAX_CONTINUATION
from idp.security import safe_next
from tests.conftest import Running
from tests.support.mfa import authenticator_added_elsewhere, totp_code
from tests.support.oidc import RegisteredClient, auth_params, make_client, query_of
from tests.support.pages import PASSWORD, csrf_from, make_user
from tests.support.wire import hidden_fields

# Standard base64 of random bytes, as a board might carry its own context: `+` and `/` are percent-encoded on
# the way, so the continuation is longer than the state.
LONG_STATE = base64.b64encode(os.urandom(3000)).decode()


@pytest.fixture
async def browser(running: Running) -> AsyncIterator[httpx.AsyncClient]:
    """A browser that is not signed in."""
    async with running.client() as c:
        yield c


async def sign_in_from(browser: httpx.AsyncClient, login_location: str) -> httpx.Response:
    """Open the sign-in page idp sent the browser to and submit it as a person would, with its own `next`."""
    page = await browser.get(login_location)
    assert page.status_code == 200, page.text
    return await browser.post(
        "/login",
        data={
            "username": "person@example.com",
            "password": PASSWORD,
            "csrf_token": csrf_from(page.text),
            "next": hidden_fields(page.text)["next"],
        },
    )


def assert_back_at_the_board(response: httpx.Response, rp: RegisteredClient, state: str) -> None:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(rp.redirect_uri + "?"), location[:200]
    answer = query_of(location)
    assert answer["state"] == state
    assert answer["code"]
    assert "error" not in answer


async def test_a_4000_character_state_comes_back_after_signing_in(running: Running, browser: httpx.AsyncClient) -> None:
    assert len(LONG_STATE) == 4000
    await make_user(running.idp)
    rp = await make_client(running.idp)
    params = auth_params(rp, state=LONG_STATE)

    start = await browser.get("/authorize", params=params)
    assert start.status_code == 303
    assert start.headers["location"].startswith("/login?")
    signed_in = await sign_in_from(browser, start.headers["location"])
    assert signed_in.status_code == 303, signed_in.text
    continuation = signed_in.headers["location"]
    assert continuation.startswith("/authorize?"), continuation[:200]
    assert len(continuation) > 4000

    assert_back_at_the_board(await browser.get(continuation), rp, LONG_STATE)


async def test_a_4000_character_state_comes_back_through_the_second_step(
    running: Running, browser: httpx.AsyncClient, clock: FrozenClock
) -> None:
    person = await make_user(running.idp)
    secret = await authenticator_added_elsewhere(running, person.id, clock.now())
    rp = await make_client(running.idp, "Strict", require_mfa=True)
    params = auth_params(rp, state=LONG_STATE)

    start = await browser.get("/authorize", params=params)
    signed_in = await sign_in_from(browser, start.headers["location"])
    verify_location = signed_in.headers["location"]
    assert verify_location.startswith("/login/verify?"), verify_location[:200]
    clock.advance(31)  # another time step than the authenticator's setup
    page = await browser.get(verify_location)
    assert page.status_code == 200, page.text
    verified = await browser.post(
        "/login/verify",
        data={
            "code": totp_code(secret, clock.now()),
            "csrf_token": csrf_from(page.text),
            "next": hidden_fields(page.text)["next"],
        },
    )
    assert verified.status_code == 303, verified.text
    assert verified.headers["location"].startswith("/authorize?"), verified.headers["location"][:200]

    assert_back_at_the_board(await browser.get(verified.headers["location"]), rp, LONG_STATE)


def test_every_continuation_idp_makes_is_within_the_limit() -> None:
    """The longest /authorize continuation, every value at its limit and every character encoded at its longest
    (four UTF-8 bytes), wrapped once more by enrollment, is still taken as `next`."""
    widest = "\U0001f600"  # four bytes in UTF-8: twelve characters percent-encoded
    continuation = "/authorize?" + urlencode({name: widest * limit for name, limit in AUTHORIZE_LIMITS.items()})
    wrapped = "/account/security/totp?" + urlencode({"next": continuation})
    assert len(wrapped) <= MAX_CONTINUATION
    assert safe_next(wrapped) == wrapped
    assert safe_next("/" + "a" * MAX_CONTINUATION) == "/account"
