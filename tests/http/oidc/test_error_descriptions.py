"""Public error descriptions never echo what the request sent, and stay within RFC 6749's characters (§5.2).

Each request below carries a value with a marker and characters a description may not hold (a quote, a
backslash, non-ASCII); the answer must name the error without repeating any of it, in the body, the redirect
or the WWW-Authenticate header.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

import httpx
import pytest

from idp.oidc.errors import DESCRIPTION_CHARACTERS
from tests.conftest import Running
from tests.support.oidc import RegisteredClient, auth_params, make_client, pkce_pair, query_of
from tests.support.wire import assert_error_page, assert_error_redirect, assert_json_error

MARKER = "qqxq"
ODD = f'{MARKER}"\\<\u00e9>\u00a7%'


@pytest.fixture
async def rp(running: Running) -> RegisteredClient:
    return await make_client(running.idp, grant_types=["authorization_code", "refresh_token", "client_credentials"])


@pytest.fixture
async def service(running: Running) -> RegisteredClient:
    return await make_client(
        running.idp, "Back end", redirect_uris=[], grant_types=["client_credentials"], scopes=["jobs:read"]
    )


def assert_not_echoed(response: httpx.Response) -> None:
    """Nothing of the odd value anywhere in what came back."""
    wire = " ".join([response.text, unquote(response.headers.get("location", "")), *response.headers.values()])
    assert MARKER not in wire, wire


async def test_an_unknown_grant_type(rp: RegisteredClient, backend: httpx.AsyncClient) -> None:
    response = await backend.post("/token", data={"grant_type": ODD}, auth=rp.basic)
    assert_json_error(response, "unsupported_grant_type")
    assert_not_echoed(response)


async def test_an_unregistered_scope_for_client_credentials(
    service: RegisteredClient, backend: httpx.AsyncClient
) -> None:
    response = await backend.post("/token", data={"grant_type": "client_credentials", "scope": ODD}, auth=service.basic)
    assert_json_error(response, "invalid_scope")
    assert_not_echoed(response)


async def test_an_unknown_client_id(backend: httpx.AsyncClient) -> None:
    response = await backend.post("/token", data={"grant_type": "client_credentials", "client_id": ODD})
    assert_json_error(response, "invalid_client", 401)
    assert_not_echoed(response)


async def test_an_odd_client_id_in_basic_credentials(backend: httpx.AsyncClient) -> None:
    response = await backend.post("/token", data={"grant_type": "client_credentials"}, auth=(ODD, ODD))
    assert_json_error(response, "invalid_client", 401)
    assert_not_echoed(response)


async def test_a_redirect_uri_that_does_not_match_the_code(
    rp: RegisteredClient, backend: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    verifier, challenge = pkce_pair()
    code = query_of((await browser.get("/authorize", params=auth_params(rp, challenge))).headers["location"])["code"]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": ODD, "code_verifier": verifier}

    response = await backend.post("/token", data=form, auth=rp.basic)

    body = assert_json_error(response, "invalid_grant")
    assert body["error_description"] == "redirect_uri does not match the one in the authorization request"
    assert_not_echoed(response)


@pytest.mark.parametrize("field", ["code", "code_verifier", "refresh_token"])
async def test_malformed_code_verifier_code_and_refresh_token(
    rp: RegisteredClient, backend: httpx.AsyncClient, field: str
) -> None:
    grant = "refresh_token" if field == "refresh_token" else "authorization_code"
    form = {"grant_type": grant, "code": "c", "redirect_uri": rp.redirect_uri, field: ODD * 3}

    response = await backend.post("/token", data=form, auth=rp.basic)

    error = "invalid_request" if field == "code_verifier" else "invalid_grant"
    assert_json_error(response, error)
    assert_not_echoed(response)


async def test_a_parameter_too_long(rp: RegisteredClient, backend: httpx.AsyncClient) -> None:
    response = await backend.post("/token", data={"grant_type": "refresh_token", "scope": ODD * 200}, auth=rp.basic)
    assert_json_error(response, "invalid_request")
    assert_not_echoed(response)


@pytest.mark.parametrize(
    "extra",
    [{"scope": f"openid {ODD}"}, {"prompt": ODD}, {"acr_values": ODD}, {"max_age": ODD}, {"response_type": ODD}],
    ids=["scope", "prompt", "acr_values", "max_age", "response_type"],
)
async def test_authorization_errors_redirected_to_the_rp(
    rp: RegisteredClient, browser: httpx.AsyncClient, extra: dict[str, str]
) -> None:
    params = auth_params(rp, pkce_pair()[1], **extra)

    response = await browser.get("/authorize", params=params)

    query = assert_error_redirect(response, params, query_of(response.headers["location"])["error"])
    assert MARKER not in query["error_description"]
    assert_not_echoed(response)


async def test_a_bearer_token_that_is_not_ours(backend: httpx.AsyncClient) -> None:
    response = await backend.get("/userinfo", headers={"Authorization": f"Bearer {MARKER}-unknown"})

    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="idp", error="invalid_token", error_description="')
    description = response.json()["error_description"]
    assert DESCRIPTION_CHARACTERS.fullmatch(description)
    assert challenge.endswith(f'error_description="{description}"')
    assert_not_echoed(response)


@pytest.mark.parametrize("field", ["client_id", "redirect_uri"])
async def test_an_odd_client_id_or_redirect_uri_at_authorize_is_a_page_that_does_not_repeat_it(
    rp: RegisteredClient, browser: httpx.AsyncClient, field: str
) -> None:
    params = {**auth_params(rp, pkce_pair()[1]), field: ODD}

    response = await browser.get("/authorize", params=params)

    assert_error_page(response)
    # The language switch links back to this very request, percent-encoded; no text on the page repeats it.
    assert MARKER not in re.sub(r'href="[^"]*"', "", response.text)
