"""Hot OIDC endpoints run a small, fixed number of SQL statements, however many users and tokens exist."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import Running
from tests.support.oidc import RegisteredClient, auth_params, exchange, make_client, pkce_pair, query_of
from tests.support.pages import PASSWORD, make_user, submit_login
from tests.support.wire import token_rows

# Measured on SQLite and PostgreSQL alike; a change here is a change in round trips per request. Clients come from
# the in-process cache (its change counter is read at most once a second, pinned off here; see test_client_cache).
TOKEN_AUTHORIZATION_CODE = 2  # consume the code (UPDATE ... RETURNING, user enabled), insert the tokens
# Use the refresh token (rules checked in the UPDATE) and insert the pair: one data-modifying CTE on PostgreSQL;
# UPDATE ... RETURNING then INSERT on SQLite.
TOKEN_REFRESH = {"postgresql": 1, "sqlite": 2}
TOKEN_CLIENT_CREDENTIALS = 1  # insert the access token
USERINFO = 1  # the token joined with its user
INTROSPECTION = 1  # the token joined with its user
REVOCATION = 3  # the token, revoke it, audit event
AUTHORIZE_WITH_SESSION = 2  # the session joined with its user, insert the code
CLIENT_CACHE_MISS = 1  # the client, once per process until a change to the clients


@dataclass
class World:
    rp: RegisteredClient
    service: RegisteredClient
    browser: httpx.AsyncClient
    backend: httpx.AsyncClient


async def sign_in(browser: httpx.AsyncClient, email: str = "person@example.com") -> None:
    assert (await submit_login(browser, email, PASSWORD)).status_code == 303


async def get_tokens(
    browser: httpx.AsyncClient, backend: httpx.AsyncClient, client: RegisteredClient
) -> dict[str, Any]:
    """The code flow for a browser that is signed in."""
    verifier, challenge = pkce_pair()
    response = await browser.get("/authorize", params=auth_params(client, challenge))
    code = query_of(response.headers["location"])["code"]
    tokens = await exchange(backend, client, code, verifier)
    assert tokens.status_code == 200, tokens.text
    return tokens.json()  # type: ignore[no-any-return]


async def warm_client_cache(running: Running, *clients: RegisteredClient) -> None:
    """Every client in the cache, and the cache's once-a-second look at the change counter out of the way."""
    for client in clients:
        assert await running.idp.clients.find(client.client_id) is not None
    running.idp.clients.cache.check_seconds = 3600


async def statements(running: Running, request: Awaitable[httpx.Response], status: int = 200) -> int:
    """How many SQL statements one request sent."""
    before = running.idp.db.statements
    response = await request
    assert response.status_code == status, response.text
    return running.idp.db.statements - before


@pytest.fixture(params=[0, 6], ids=["alone", "crowded"])
async def world(request: pytest.FixtureRequest, running: Running) -> Any:
    """The person and two clients; "crowded" adds people with sessions, codes and tokens of both clients."""
    rp = await make_client(running.idp)
    other = await make_client(running.idp, "Other board")
    service = await make_client(running.idp, "Back end", redirect_uris=[], grant_types=["client_credentials"])
    async with running.client() as backend:
        for i in range(request.param):
            await make_user(running.idp, f"crowd{i}@example.com")
            async with running.client() as theirs:
                await sign_in(theirs, f"crowd{i}@example.com")
                for client in (rp, other):
                    await get_tokens(theirs, backend, client)
            await backend.post("/token", data={"grant_type": "client_credentials"}, auth=service.basic)
        assert await token_rows(running) == request.param * 5
        await make_user(running.idp)
        await warm_client_cache(running, rp, other, service)
        async with running.client() as browser:
            await sign_in(browser)
            yield World(rp, service, browser, backend)


async def test_authorization_code_grant(running: Running, world: World) -> None:
    verifier, challenge = pkce_pair()
    response = await world.browser.get("/authorize", params=auth_params(world.rp, challenge))
    code = query_of(response.headers["location"])["code"]

    assert await statements(running, exchange(world.backend, world.rp, code, verifier)) == TOKEN_AUTHORIZATION_CODE


async def test_refresh_token_grant(running: Running, world: World) -> None:
    tokens = await get_tokens(world.browser, world.backend, world.rp)
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}

    dialect = "sqlite" if running.idp.db.is_sqlite else "postgresql"
    request = world.backend.post("/token", data=form, auth=world.rp.basic)
    assert await statements(running, request) == TOKEN_REFRESH[dialect]


async def test_client_credentials_grant(running: Running, world: World) -> None:
    request = world.backend.post("/token", data={"grant_type": "client_credentials"}, auth=world.service.basic)

    assert await statements(running, request) == TOKEN_CLIENT_CREDENTIALS


async def test_userinfo(running: Running, world: World) -> None:
    tokens = await get_tokens(world.browser, world.backend, world.rp)
    request = world.backend.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})

    assert await statements(running, request) == USERINFO


async def test_introspection(running: Running, world: World) -> None:
    tokens = await get_tokens(world.browser, world.backend, world.rp)
    request = world.backend.post("/introspect", data={"token": tokens["access_token"]}, auth=world.rp.basic)

    assert await statements(running, request) == INTROSPECTION


async def test_revocation(running: Running, world: World) -> None:
    tokens = await get_tokens(world.browser, world.backend, world.rp)
    request = world.backend.post("/revoke", data={"token": tokens["refresh_token"]}, auth=world.rp.basic)

    assert await statements(running, request) == REVOCATION


async def test_authorize_with_a_session(running: Running, world: World) -> None:
    request = world.browser.get("/authorize", params=auth_params(world.rp))

    assert await statements(running, request, status=303) == AUTHORIZE_WITH_SESSION


async def test_a_client_not_yet_cached_costs_one_statement_once(running: Running, world: World) -> None:
    running.idp.clients.cache.clear()
    form = {"grant_type": "client_credentials"}

    first = await statements(running, world.backend.post("/token", data=form, auth=world.service.basic))
    second = await statements(running, world.backend.post("/token", data=form, auth=world.service.basic))

    assert (first, second) == (TOKEN_CLIENT_CREDENTIALS + CLIENT_CACHE_MISS, TOKEN_CLIENT_CREDENTIALS)
