"""Authorization endpoint errors: an HTML page for an untrusted client or redirect URI, else a redirect to the RP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlencode

import httpx
import pytest

from tests.conftest import Running
from tests.support.oidc import RegisteredClient, auth_params, make_client, pkce_pair, query_of
from tests.support.pages import PASSWORD, make_user, submit_login
from tests.support.wire import assert_error_page, assert_error_redirect, code_rows

OTHER_URI = "https://jobs.example/cb?tenant=a"


@pytest.fixture
async def rp(running: Running) -> RegisteredClient:
    """A confidential client with two redirect URIs, one of them with a query of its own."""
    return await make_client(running.idp, redirect_uris=["https://jobs.example/callback", OTHER_URI])


@pytest.fixture
async def browser(running: Running) -> AsyncIterator[httpx.AsyncClient]:
    """A browser already signed in, so that any request that got through would be answered with a code."""
    await make_user(running.idp)
    async with running.client() as c:
        assert (await submit_login(c, "person@example.com", PASSWORD)).status_code == 303
        yield c


async def get_raw(browser: httpx.AsyncClient, query: str) -> httpx.Response:
    """GET /authorize with a query string exactly as given (no re-encoding)."""
    return await browser.get(f"/authorize?{query}")


def params_for(rp: RegisteredClient, **changes: str | None) -> dict[str, str]:
    """Valid PKCE parameters with `changes` applied; a None value removes the parameter."""
    _, challenge = pkce_pair()
    params = auth_params(rp, challenge)
    for name, value in changes.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = value
    return params


async def test_a_valid_request_from_this_browser_gets_a_code(
    running: Running, rp: RegisteredClient, browser: httpx.AsyncClient
) -> None:
    """The control: the fixtures really would issue a code, so "no code row" below means something."""
    response = await browser.get("/authorize", params=params_for(rp))
    assert response.status_code == 303
    assert "code=" in response.headers["location"]
    assert await code_rows(running) == 1


# -- shown as a page, never redirected -----------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"client_id": "no-such-client"}, id="unknown-client"),
        pytest.param({"client_id": None}, id="missing-client_id"),
        pytest.param({"client_id": ""}, id="empty-client_id"),
        pytest.param({"client_id": "x" * 65}, id="over-long-client_id"),
        pytest.param({"redirect_uri": "https://evil.example/callback"}, id="unregistered-redirect_uri"),
        pytest.param({"redirect_uri": None}, id="missing-redirect_uri"),
        pytest.param({"redirect_uri": ""}, id="empty-redirect_uri"),
        pytest.param({"redirect_uri": "https://jobs.example/callback/evil"}, id="registered-uri-as-prefix"),
        pytest.param({"redirect_uri": "https://jobs.example/call"}, id="prefix-of-registered-uri"),
        pytest.param({"redirect_uri": "https://jobs.example/callback?x=1"}, id="added-query"),
        pytest.param({"redirect_uri": "https://jobs.example/cb?tenant=b"}, id="different-query"),
        pytest.param({"redirect_uri": "https://jobs.example/cb"}, id="dropped-query"),
        pytest.param({"redirect_uri": "https://JOBS.example/callback"}, id="different-case"),
        pytest.param({"redirect_uri": "https://jobs.example/callback/"}, id="trailing-slash"),
        pytest.param({"redirect_uri": "https://jobs.example/callback#frag"}, id="fragment"),
        pytest.param({"redirect_uri": "https://jobs.example/" + "a" * 2100}, id="over-long-redirect_uri"),
    ],
)
async def test_untrusted_client_or_redirect_uri_is_a_page(
    running: Running, rp: RegisteredClient, browser: httpx.AsyncClient, changes: dict[str, str | None]
) -> None:
    response = await browser.get("/authorize", params=params_for(rp, **changes))

    assert_error_page(response)
    assert await code_rows(running) == 0


async def test_a_redirect_uri_of_another_client_is_a_page(
    running: Running, rp: RegisteredClient, browser: httpx.AsyncClient
) -> None:
    await make_client(running.idp, "Other", redirect_uris=["https://other.example/callback"])
    response = await browser.get("/authorize", params=params_for(rp, redirect_uri="https://other.example/callback"))

    assert_error_page(response)
    assert await code_rows(running) == 0


@pytest.mark.parametrize("name", ["client_id", "redirect_uri"])
async def test_repeated_client_id_or_redirect_uri_is_a_page(
    running: Running, rp: RegisteredClient, browser: httpx.AsyncClient, name: str
) -> None:
    params = params_for(rp)
    query = urlencode(params) + "&" + urlencode({name: params[name]})

    response = await get_raw(browser, query)

    assert_error_page(response)
    assert await code_rows(running) == 0


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param("nonce=%ff", id="value"),
        pytest.param("%ff=1", id="name"),
        pytest.param("state=%C3%28", id="invalid-sequence"),
        pytest.param("client_id=%ff", id="client_id"),
    ],
)
async def test_bytes_that_are_not_utf8_are_a_page_not_a_500(
    running: Running, rp: RegisteredClient, browser: httpx.AsyncClient, extra: str
) -> None:
    query = urlencode(params_for(rp)) + "&" + extra

    response = await get_raw(browser, query)

    assert_error_page(response)
    assert await code_rows(running) == 0


async def test_non_utf8_form_post_is_a_page(running: Running, rp: RegisteredClient, browser: httpx.AsyncClient) -> None:
    body = urlencode(params_for(rp)) + "&nonce=%ff"

    response = await browser.post(
        "/authorize", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )

    assert_error_page(response)
    assert await code_rows(running) == 0


# -- redirected to the relying party ---------------------------------------------------------------------


async def test_repeated_scope_is_invalid_request(
    running: Running, rp: RegisteredClient, browser: httpx.AsyncClient
) -> None:
    params = params_for(rp)
    query = urlencode(params) + "&scope=openid"

    response = await get_raw(browser, query)

    assert_error_redirect(response, params, "invalid_request")
    assert await code_rows(running) == 0


@pytest.mark.parametrize("name", ["response_type", "nonce", "code_challenge", "prompt", "max_age"])
async def test_other_repeated_parameters_are_invalid_request(
    running: Running, rp: RegisteredClient, browser: httpx.AsyncClient, name: str
) -> None:
    params = params_for(rp, prompt="login", max_age="600")
    query = urlencode(params) + "&" + urlencode({name: params[name]})

    response = await get_raw(browser, query)

    assert_error_redirect(response, params, "invalid_request")
    assert await code_rows(running) == 0


async def test_error_redirect_keeps_the_registered_query(
    running: Running, rp: RegisteredClient, browser: httpx.AsyncClient
) -> None:
    params = params_for(rp, redirect_uri=OTHER_URI, scope="email")

    response = await browser.get("/authorize", params=params)

    assert response.headers["location"].startswith(OTHER_URI + "&")
    query = assert_error_redirect(response, {**params, "redirect_uri": "https://jobs.example/cb"}, "invalid_scope")
    assert query["tenant"] == "a"
    assert await code_rows(running) == 0


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        pytest.param({"scope": "email profile"}, "invalid_scope", id="scope-without-openid"),
        pytest.param({"scope": None}, "invalid_scope", id="scope-missing"),
        pytest.param({"scope": "openid payroll"}, "invalid_scope", id="unknown-scope"),
        pytest.param({"scope": "OPENID"}, "invalid_scope", id="scope-is-case-sensitive"),
        pytest.param({"response_type": None}, "invalid_request", id="response_type-missing"),
        pytest.param({"response_type": "token"}, "unsupported_response_type", id="response_type-token"),
        pytest.param({"response_type": "code id_token"}, "unsupported_response_type", id="response_type-hybrid"),
        pytest.param({"response_mode": "fragment"}, "invalid_request", id="response_mode-fragment"),
        pytest.param({"code_challenge_method": "plain"}, "invalid_request", id="pkce-plain"),
        pytest.param({"code_challenge_method": None}, "invalid_request", id="pkce-challenge-without-method"),
        pytest.param({"code_challenge_method": "s256"}, "invalid_request", id="pkce-method-lowercase"),
        pytest.param({"code_challenge": "a" * 42}, "invalid_request", id="pkce-challenge-too-short"),
        pytest.param({"code_challenge": "a" * 44}, "invalid_request", id="pkce-challenge-too-long"),
        pytest.param({"code_challenge": "+" * 43}, "invalid_request", id="pkce-challenge-not-base64url"),
        pytest.param({"code_challenge": "a" * 42 + "="}, "invalid_request", id="pkce-challenge-padded"),
        pytest.param({"code_challenge": "a" * 200}, "invalid_request", id="pkce-challenge-over-limit"),
        pytest.param({"code_challenge": None}, "invalid_request", id="pkce-method-without-challenge"),
        pytest.param({"prompt": "select_account"}, "invalid_request", id="prompt-unsupported"),
        pytest.param({"prompt": "bogus"}, "invalid_request", id="prompt-unknown"),
        pytest.param({"prompt": "none login"}, "invalid_request", id="prompt-none-with-login"),
        pytest.param({"prompt": "none consent"}, "invalid_request", id="prompt-none-with-consent"),
        pytest.param({"max_age": "-1"}, "invalid_request", id="max_age-negative"),
        pytest.param({"max_age": "ten"}, "invalid_request", id="max_age-word"),
        pytest.param({"max_age": "1.5"}, "invalid_request", id="max_age-fraction"),
        pytest.param({"max_age": " 60"}, "invalid_request", id="max_age-space"),
        pytest.param({"max_age": "\u00b2"}, "invalid_request", id="max_age-superscript-digit"),
        pytest.param({"max_age": "\u0663"}, "invalid_request", id="max_age-arabic-indic-digit"),
        pytest.param({"max_age": "9" * 40}, "invalid_request", id="max_age-over-long"),
        pytest.param({"acr_values": "gold"}, "invalid_request", id="acr_values-unknown"),
        pytest.param({"nonce": "n" * 10_000}, "invalid_request", id="nonce-10kB"),
        pytest.param({"login_hint": "x" * 5_000}, "invalid_request", id="login_hint-over-long"),
        pytest.param({"scope": "openid " * 200}, "invalid_request", id="scope-over-long"),
        pytest.param({"request": "eyJhbGciOiJub25lIn0.e30."}, "invalid_request", id="request-object"),
        pytest.param({"request_uri": "https://jobs.example/req/1"}, "invalid_request", id="request_uri"),
        pytest.param({"request": "x"}, "invalid_request", id="request-short"),
    ],
)
async def test_errors_after_the_redirect_uri_is_trusted_go_back_to_the_rp(
    running: Running,
    rp: RegisteredClient,
    browser: httpx.AsyncClient,
    changes: dict[str, str | None],
    error: str,
) -> None:
    params = params_for(rp, **changes)

    response = await browser.get("/authorize", params=params)

    assert_error_redirect(response, params, error)
    assert await code_rows(running) == 0


async def test_public_client_without_pkce_is_invalid_request(running: Running, browser: httpx.AsyncClient) -> None:
    app = await make_client(running.idp, "Mobile", public=True, redirect_uris=["com.jobs.app:/callback"])
    app.redirect_uri = "com.jobs.app:/callback"
    params = auth_params(app)

    response = await browser.get("/authorize", params=params)

    assert_error_redirect(response, params, "invalid_request")
    assert await code_rows(running) == 0


async def test_post_with_the_same_errors_is_redirected_too(
    running: Running, rp: RegisteredClient, browser: httpx.AsyncClient
) -> None:
    params = params_for(rp, code_challenge_method="plain")

    response = await browser.post("/authorize", data=params)

    assert_error_redirect(response, params, "invalid_request")
    assert await code_rows(running) == 0


async def test_an_over_long_state_is_not_echoed(
    running: Running, rp: RegisteredClient, browser: httpx.AsyncClient
) -> None:
    params = params_for(rp, state="s" * 5_000)

    response = await browser.get("/authorize", params=params)

    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith(rp.redirect_uri + "?")
    assert "error=invalid_request" in location
    assert "state=" not in location
    assert "iss=" in location
    assert await code_rows(running) == 0


@pytest.mark.parametrize("name", ["nonce", "state", "login_hint", "ui_locales", "scope", "prompt", "max_age"])
async def test_nul_in_a_parameter_is_invalid_request_not_a_500(
    running: Running, rp: RegisteredClient, browser: httpx.AsyncClient, name: str
) -> None:
    """PostgreSQL cannot store NUL: it must be refused before anything is written."""
    params = params_for(rp, **{name: "a\x00b"})

    response = await browser.get("/authorize", params=params)

    assert response.status_code == 303
    query = query_of(response.headers["location"])
    assert query["error"] == "invalid_request"
    assert "code" not in query
    assert await code_rows(running) == 0


@pytest.mark.parametrize("name", ["client_id", "redirect_uri"])
async def test_nul_in_client_id_or_redirect_uri_is_a_page_not_a_500(
    running: Running, rp: RegisteredClient, browser: httpx.AsyncClient, name: str
) -> None:
    params = params_for(rp)
    params[name] += "\x00"

    assert_error_page(await browser.get("/authorize", params=params))
    assert await code_rows(running) == 0
