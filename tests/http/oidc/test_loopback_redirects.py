"""Native apps' loopback redirect URIs (RFC 8252 §7.3): any port on 127.0.0.1 and [::1]; everything else exact."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Running
from tests.support.oidc import RegisteredClient, auth_params, exchange, make_client, pkce_pair, query_of
from tests.support.wire import assert_error_page, code_rows

REGISTERED = [
    "http://127.0.0.1/callback",
    "http://[::1]:8400/callback",
    "http://localhost/callback",
    "https://jobs.example:8443/callback",
]


@pytest.fixture
async def app(running: Running) -> RegisteredClient:
    """A native app: public, PKCE, loopback listeners."""
    return await make_client(running.idp, "Desktop app", public=True, redirect_uris=REGISTERED)


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1:51234/callback",
        "http://127.0.0.1/callback",
        "http://127.0.0.1:1/callback",
        "http://[::1]/callback",
        "http://[::1]:65535/callback",
    ],
)
async def test_a_loopback_ip_matches_on_any_port_and_the_code_redeems(
    running: Running, app: RegisteredClient, browser: httpx.AsyncClient, backend: httpx.AsyncClient, uri: str
) -> None:
    verifier, challenge = pkce_pair()
    native = RegisteredClient(app.client_id, None, redirect_uri=uri)

    response = await browser.get("/authorize", params=auth_params(native, challenge))

    assert response.status_code == 303, response.text
    assert response.headers["location"].startswith(uri + "?")
    tokens = await exchange(backend, native, query_of(response.headers["location"])["code"], verifier)
    assert tokens.status_code == 200, tokens.text


@pytest.mark.parametrize(
    "uri",
    [
        "http://localhost:51234/callback",  # RFC 8252 §8.3: not localhost
        "http://127.0.0.1:51234/other",
        "http://127.0.0.1:51234/callback?x=1",
        "http://127.0.0.1:99999/callback",
        "http://127.0.0.1:/callback",
        "http://127.0.0.2:51234/callback",
        "http://user@127.0.0.1:51234/callback",
        "https://127.0.0.1:51234/callback",
        "https://jobs.example:9443/callback",
        "https://jobs.example/callback",
        "http://[::1]:8400/callback/",
    ],
)
async def test_anything_else_must_match_exactly(
    running: Running, app: RegisteredClient, browser: httpx.AsyncClient, uri: str
) -> None:
    _, challenge = pkce_pair()

    response = await browser.get(
        "/authorize", params=auth_params(RegisteredClient(app.client_id, None, uri), challenge)
    )

    assert_error_page(response)
    assert await code_rows(running) == 0


async def test_the_token_request_must_repeat_the_port_used(
    running: Running, app: RegisteredClient, browser: httpx.AsyncClient, backend: httpx.AsyncClient
) -> None:
    verifier, challenge = pkce_pair()
    native = RegisteredClient(app.client_id, None, redirect_uri="http://127.0.0.1:51234/callback")
    response = await browser.get("/authorize", params=auth_params(native, challenge))
    code = query_of(response.headers["location"])["code"]

    other_port = RegisteredClient(app.client_id, None, redirect_uri="http://127.0.0.1:51235/callback")
    refused = await exchange(backend, other_port, code, verifier)

    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"
