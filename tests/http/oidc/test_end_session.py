"""RP-Initiated Logout 1.0 at /end_session: id_token_hint, registered post-logout URIs, state, confirmation."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from idp.clock import FrozenClock
from tests.conftest import Running
from tests.support.oidc import LOGOUT_URI, RegisteredClient, auth_params, exchange, make_client, pkce_pair, query_of
from tests.support.pages import PASSWORD, csrf_from, make_user, submit_login
from tests.support.wire import assert_error_page, hidden_fields


@pytest.fixture
async def rp(running: Running) -> RegisteredClient:
    return await make_client(running.idp)


@pytest.fixture
async def browser(running: Running) -> AsyncIterator[httpx.AsyncClient]:
    await make_user(running.idp)
    async with running.client() as c:
        assert (await submit_login(c, "person@example.com", PASSWORD)).status_code == 303
        yield c


async def id_token_for(running: Running, browser: httpx.AsyncClient, client: RegisteredClient) -> str:
    verifier, challenge = pkce_pair()
    response = await browser.get("/authorize", params=auth_params(client, challenge))
    code = query_of(response.headers["location"])["code"]
    async with running.client() as backend:
        tokens = await exchange(backend, client, code, verifier)
    return tokens.json()["id_token"]  # type: ignore[no-any-return]


async def signed_in(browser: httpx.AsyncClient) -> bool:
    response = await browser.get("/account")
    if response.status_code == 200:
        return True
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")
    return False


async def test_hint_of_the_signed_in_person_ends_the_session_and_returns_with_state(
    running: Running, rp: RegisteredClient, browser: httpx.AsyncClient
) -> None:
    hint = await id_token_for(running, browser, rp)

    response = await browser.get(
        "/end_session", params={"id_token_hint": hint, "post_logout_redirect_uri": LOGOUT_URI, "state": "bye-1"}
    )

    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith(LOGOUT_URI + "?")
    assert query_of(location)["state"] == "bye-1"
    assert not await signed_in(browser)


async def test_hint_with_a_matching_client_id_and_post(
    running: Running, rp: RegisteredClient, browser: httpx.AsyncClient
) -> None:
    hint = await id_token_for(running, browser, rp)

    response = await browser.post(
        "/end_session",
        data={"id_token_hint": hint, "client_id": rp.client_id, "post_logout_redirect_uri": LOGOUT_URI},
    )

    assert response.status_code == 303
    assert response.headers["location"] == LOGOUT_URI
    assert not await signed_in(browser)


async def test_an_expired_hint_is_still_a_hint(
    running: Running, rp: RegisteredClient, browser: httpx.AsyncClient, clock: FrozenClock
) -> None:
    hint = await id_token_for(running, browser, rp)
    clock.advance(running.idp.settings.id_token_lifetime_seconds + 60)

    response = await browser.get("/end_session", params={"id_token_hint": hint, "post_logout_redirect_uri": LOGOUT_URI})

    assert response.status_code == 303
    assert response.headers["location"] == LOGOUT_URI
    assert not await signed_in(browser)


async def test_without_a_redirect_uri_a_signed_out_page(
    running: Running, rp: RegisteredClient, browser: httpx.AsyncClient
) -> None:
    hint = await id_token_for(running, browser, rp)

    response = await browser.get("/end_session", params={"id_token_hint": hint})

    assert response.status_code == 200
    assert "location" not in response.headers
    assert not await signed_in(browser)


@pytest.mark.parametrize(
    "uri",
    [
        "https://evil.example/signed-out",
        LOGOUT_URI + "/more",
        LOGOUT_URI + "?x=1",
        "https://jobs.example/callback",  # a redirect URI, not a post-logout one
    ],
)
async def test_unregistered_post_logout_redirect_uri_is_a_page_and_keeps_the_session(
    running: Running, rp: RegisteredClient, browser: httpx.AsyncClient, uri: str
) -> None:
    hint = await id_token_for(running, browser, rp)

    response = await browser.get("/end_session", params={"id_token_hint": hint, "post_logout_redirect_uri": uri})

    assert_error_page(response)
    assert await signed_in(browser)


async def test_post_logout_uri_of_another_client_is_a_page(
    running: Running, rp: RegisteredClient, browser: httpx.AsyncClient
) -> None:
    await make_client(running.idp, "Other", post_logout_redirect_uris=["https://other.example/bye"])
    hint = await id_token_for(running, browser, rp)

    response = await browser.get(
        "/end_session", params={"id_token_hint": hint, "post_logout_redirect_uri": "https://other.example/bye"}
    )

    assert_error_page(response)
    assert await signed_in(browser)


async def test_post_logout_uri_without_hint_or_client_id_is_a_page(
    rp: RegisteredClient, browser: httpx.AsyncClient
) -> None:
    response = await browser.get("/end_session", params={"post_logout_redirect_uri": LOGOUT_URI})

    assert_error_page(response)
    assert await signed_in(browser)


async def test_hint_for_another_client_id_is_a_page(
    running: Running, rp: RegisteredClient, browser: httpx.AsyncClient
) -> None:
    other = await make_client(running.idp, "Other")
    hint = await id_token_for(running, browser, rp)

    response = await browser.get(
        "/end_session",
        params={"id_token_hint": hint, "client_id": other.client_id, "post_logout_redirect_uri": LOGOUT_URI},
    )

    assert_error_page(response)
    assert await signed_in(browser)


async def test_without_a_hint_the_person_is_asked_then_signed_out(
    rp: RegisteredClient, browser: httpx.AsyncClient
) -> None:
    params = {"client_id": rp.client_id, "post_logout_redirect_uri": LOGOUT_URI, "state": "bye-2"}

    page = await browser.get("/end_session", params=params)

    assert page.status_code == 200
    assert 'action="/end_session/confirm"' in page.text
    assert "Sign out</button>" in page.text
    assert await signed_in(browser)  # asking is not doing

    form = {**hidden_fields(page.text), "csrf_token": csrf_from(page.text)}
    response = await browser.post("/end_session/confirm", data=form)

    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith(LOGOUT_URI + "?")
    assert query_of(location)["state"] == "bye-2"
    assert not await signed_in(browser)


async def test_confirmation_without_csrf_is_403_and_keeps_the_session(
    rp: RegisteredClient, browser: httpx.AsyncClient
) -> None:
    page = await browser.get("/end_session", params={"client_id": rp.client_id})
    fields = {k: v for k, v in hidden_fields(page.text).items() if k != "csrf_token"}

    missing = await browser.post("/end_session/confirm", data=fields)
    wrong = await browser.post("/end_session/confirm", data={**fields, "csrf_token": "0" * 64})

    assert missing.status_code == 403
    assert wrong.status_code == 403
    assert await signed_in(browser)


async def test_confirmation_with_a_forged_redirect_is_a_page(rp: RegisteredClient, browser: httpx.AsyncClient) -> None:
    page = await browser.get("/end_session", params={"client_id": rp.client_id})
    form = {
        **hidden_fields(page.text),
        "csrf_token": csrf_from(page.text),
        "post_logout_redirect_uri": "https://evil.example/",
    }

    response = await browser.post("/end_session/confirm", data=form)

    assert_error_page(response)
    assert await signed_in(browser)


async def test_hint_of_someone_else_asks_first(running: Running, rp: RegisteredClient) -> None:
    await make_user(running.idp, "other@example.com")
    async with running.client() as theirs:
        assert (await submit_login(theirs, "other@example.com", PASSWORD)).status_code == 303
        hint = await id_token_for(running, theirs, rp)
    async with running.client() as mine:
        await make_user(running.idp)
        assert (await submit_login(mine, "person@example.com", PASSWORD)).status_code == 303

        response = await mine.get(
            "/end_session", params={"id_token_hint": hint, "post_logout_redirect_uri": LOGOUT_URI}
        )

        assert response.status_code == 200
        assert 'action="/end_session/confirm"' in response.text
        assert await signed_in(mine)


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize("variant", ["other-key-same-kid", "other-key-no-kid", "alg-none", "garbage", "tampered"])
async def test_a_forged_hint_is_a_page(
    running: Running, rp: RegisteredClient, browser: httpx.AsyncClient, variant: str
) -> None:
    real = await id_token_for(running, browser, rp)
    header_b64, claims_b64, signature = real.split(".")
    claims = json.loads(base64.urlsafe_b64decode(claims_b64 + "=" * (-len(claims_b64) % 4)))
    kid = json.loads(base64.urlsafe_b64decode(header_b64 + "=" * (-len(header_b64) % 4)))["kid"]
    attacker = RSAKey.generate_key(2048, private=True)
    if variant == "other-key-same-kid":
        hint = jwt.encode({"alg": "RS256", "kid": kid}, claims, attacker, ["RS256"])
    elif variant == "other-key-no-kid":
        hint = jwt.encode({"alg": "RS256"}, claims, attacker, ["RS256"])
    elif variant == "alg-none":
        hint = f"{_b64({'alg': 'none', 'kid': kid})}.{claims_b64}."
    elif variant == "garbage":
        hint = "not-a-jwt"
    else:
        hint = f"{header_b64}.{_b64({**claims, 'sub': 'someone-else'})}.{signature}"

    response = await browser.get("/end_session", params={"id_token_hint": hint, "post_logout_redirect_uri": LOGOUT_URI})

    assert_error_page(response)
    assert await signed_in(browser)


async def test_a_hint_from_a_retired_key_is_a_page(
    running: Running, rp: RegisteredClient, browser: httpx.AsyncClient, clock: FrozenClock
) -> None:
    hint = await id_token_for(running, browser, rp)
    kid = running.idp.key_ring.signer("RS256").kid
    clock.advance(60)
    await running.idp.key_ring.rotate()
    await running.idp.key_ring.retire(kid)

    response = await browser.get("/end_session", params={"id_token_hint": hint})

    assert_error_page(response)
    assert await signed_in(browser)


async def test_non_utf8_and_repeated_parameters_are_a_page(rp: RegisteredClient, browser: httpx.AsyncClient) -> None:
    bad = await browser.get("/end_session?state=%ff")
    nul = await browser.get("/end_session?client_id=a%00b")
    assert_error_page(nul)
    repeated = await browser.get(f"/end_session?client_id={rp.client_id}&client_id={rp.client_id}")

    assert_error_page(bad)
    assert_error_page(repeated)
    assert await signed_in(browser)
