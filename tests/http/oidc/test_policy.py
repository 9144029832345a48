"""When an IdP session is used (OIDC Core §3.1.2.1 prompt, max_age, acr_values, login_hint) and consent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from idp.clock import FrozenClock
from idp.config import Settings
from tests.conftest import Running
from tests.support.mfa import authenticator_added_elsewhere, totp_code
from tests.support.oidc import (
    RegisteredClient,
    auth_params,
    decode_id_token,
    exchange,
    make_client,
    pkce_pair,
    query_of,
    sign_in_and_authorize,
)
from tests.support.pages import PASSWORD, csrf_from, make_user, submit_login
from tests.support.wire import assert_error_redirect, code_rows, hidden_fields


@pytest.fixture
async def rp(running: Running) -> RegisteredClient:
    return await make_client(running.idp)


@pytest.fixture
async def browser(running: Running) -> AsyncIterator[httpx.AsyncClient]:
    """A browser with nobody signed in yet; the person exists."""
    await make_user(running.idp)
    async with running.client() as c:
        yield c


@pytest.fixture
async def backend(running: Running) -> AsyncIterator[httpx.AsyncClient]:
    async with running.client() as c:
        yield c


async def sign_in(browser: httpx.AsyncClient) -> None:
    assert (await submit_login(browser, "person@example.com", PASSWORD)).status_code == 303


async def sign_in_from(browser: httpx.AsyncClient, login_location: str) -> httpx.Response:
    """On the /login page we were sent to: show it, sign in, and follow the continuation back to /authorize."""
    page = await browser.get(login_location)
    assert page.status_code == 200, page.text
    next_url = query_of(login_location)["next"]
    login = await submit_login(browser, "person@example.com", PASSWORD, next_url=next_url, form_page=login_location)
    assert login.status_code == 303, login.text
    assert login.headers["location"].startswith("/authorize?")
    return await browser.get(login.headers["location"])


def code_of(response: httpx.Response, client: RegisteredClient) -> str:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(client.redirect_uri + "?"), location
    return query_of(location)["code"]


async def id_token_claims(
    backend: httpx.AsyncClient, client: RegisteredClient, code: str, verifier: str
) -> dict[str, Any]:
    response = await exchange(backend, client, code, verifier)
    assert response.status_code == 200, response.text
    return await decode_id_token(backend, response.json()["id_token"])


# -- single sign-on and prompt=none -------------------------------------------------------------------


async def test_a_second_client_gets_a_code_without_typing(
    running: Running, rp: RegisteredClient, browser: httpx.AsyncClient
) -> None:
    second = await make_client(running.idp, "Second board")
    await sign_in_and_authorize(browser, auth_params(rp))

    response = await browser.get("/authorize", params=auth_params(second))

    code_of(response, second)


async def test_prompt_none_without_a_session_is_login_required(
    running: Running, rp: RegisteredClient, browser: httpx.AsyncClient
) -> None:
    params = auth_params(rp, prompt="none")

    response = await browser.get("/authorize", params=params)

    assert_error_redirect(response, params, "login_required")
    assert await code_rows(running) == 0


async def test_prompt_none_with_a_session_gets_a_code(rp: RegisteredClient, browser: httpx.AsyncClient) -> None:
    await sign_in(browser)
    code_of(await browser.get("/authorize", params=auth_params(rp, prompt="none")), rp)


# -- prompt=login ------------------------------------------------------------------------------------------


async def test_prompt_login_asks_again_and_the_new_code_has_a_new_auth_time(
    rp: RegisteredClient, browser: httpx.AsyncClient, backend: httpx.AsyncClient, clock: FrozenClock
) -> None:
    verifier, challenge = pkce_pair()
    first = await sign_in_and_authorize(browser, auth_params(rp, challenge))
    first_claims = await id_token_claims(backend, rp, first["code"], verifier)
    clock.advance(120)

    verifier, challenge = pkce_pair()
    response = await browser.get("/authorize", params=auth_params(rp, challenge, prompt="login"))

    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/login?")
    assert query_of(location)["reauth"] == "1"
    again = await sign_in_from(browser, location)
    claims = await id_token_claims(backend, rp, code_of(again, rp), verifier)
    assert claims["auth_time"] == first_claims["auth_time"] + 120
    assert claims["sub"] == first_claims["sub"]


@pytest.mark.parametrize("later", [0.4, 5])
async def test_prompt_login_without_signing_in_again_gives_no_code(
    running: Running, rp: RegisteredClient, browser: httpx.AsyncClient, clock: FrozenClock, later: float
) -> None:
    await sign_in(browser)
    clock.advance(later)  # within the same second as the sign-in, or a few seconds on

    response = await browser.get("/authorize", params=auth_params(rp, prompt="login"))
    # The continuation alone (without a new sign-in) must not be enough either.
    continuation = query_of(response.headers["location"])["next"]
    replayed = await browser.get(continuation)

    assert response.headers["location"].startswith("/login?")
    assert replayed.headers["location"].startswith("/login?")
    assert await code_rows(running) == 0


# -- max_age -------------------------------------------------------------------------------------------------


async def test_max_age_passed_sends_to_login_and_then_issues_a_code(
    running: Running,
    rp: RegisteredClient,
    browser: httpx.AsyncClient,
    backend: httpx.AsyncClient,
    clock: FrozenClock,
) -> None:
    await sign_in(browser)
    clock.advance(30)
    within = await browser.get("/authorize", params=auth_params(rp, max_age="300"))
    code_of(within, rp)
    clock.advance(271)  # the sign-in is now 301 s old

    verifier, challenge = pkce_pair()
    response = await browser.get("/authorize", params=auth_params(rp, challenge, max_age="300"))

    location = response.headers["location"]
    assert location.startswith("/login?")
    assert query_of(location)["reauth"] == "1"
    clock.advance(5)  # a person takes a moment to type
    again = await sign_in_from(browser, location)
    claims = await id_token_claims(backend, rp, code_of(again, rp), verifier)
    assert claims["auth_time"] == int(clock.now().timestamp())


async def test_max_age_zero_does_not_loop(
    rp: RegisteredClient, browser: httpx.AsyncClient, backend: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await sign_in(browser)
    clock.advance(10)
    verifier, challenge = pkce_pair()

    response = await browser.get("/authorize", params=auth_params(rp, challenge, max_age="0"))
    location = response.headers["location"]
    assert location.startswith("/login?")
    clock.advance(5)
    login = await submit_login(
        browser, "person@example.com", PASSWORD, next_url=query_of(location)["next"], form_page=location
    )
    clock.advance(3)  # the continuation arrives a little later than the sign-in: still no second round
    back = await browser.get(login.headers["location"])

    claims = await id_token_claims(backend, rp, code_of(back, rp), verifier)
    assert claims["auth_time"] == int(clock.now().timestamp()) - 3


async def test_max_age_zero_from_scratch_issues_a_code(rp: RegisteredClient, browser: httpx.AsyncClient) -> None:
    response = await browser.get("/authorize", params=auth_params(rp, max_age="0"))
    assert response.headers["location"].startswith("/login?")

    code_of(await sign_in_from(browser, response.headers["location"]), rp)


async def test_max_age_with_prompt_none_is_login_required(
    running: Running, rp: RegisteredClient, browser: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await sign_in(browser)
    clock.advance(61)
    params = auth_params(rp, max_age="60", prompt="none")

    assert_error_redirect(await browser.get("/authorize", params=params), params, "login_required")
    assert await code_rows(running) == 0


# -- acr_values and require_mfa ------------------------------------------------------------------------------


@pytest.mark.parametrize("extra", [{"acr_values": "mfa"}, {}])
async def test_a_password_only_session_is_not_enough_for_mfa(
    running: Running, browser: httpx.AsyncClient, extra: dict[str, str]
) -> None:
    client = await make_client(running.idp, "Strict", require_mfa=not extra)
    await sign_in(browser)

    response = await browser.get("/authorize", params=auth_params(client, **extra))

    # Not a code: either a step-up page of ours or an error back at the RP; never the RP with a code.
    assert response.status_code == 303
    location = response.headers["location"]
    if location.startswith(client.redirect_uri):
        assert "error" in query_of(location)
    else:
        assert location.startswith("/login/verify?"), location
    assert "code" not in query_of(location)
    assert await code_rows(running) == 0


@pytest.mark.parametrize("extra", [{"acr_values": "mfa"}, {}])
async def test_mfa_needed_with_prompt_none_is_interaction_required(
    running: Running, browser: httpx.AsyncClient, extra: dict[str, str]
) -> None:
    client = await make_client(running.idp, "Strict", require_mfa=not extra)
    await sign_in(browser)
    params = auth_params(client, prompt="none", **extra)

    response = await browser.get("/authorize", params=params)

    assert_error_redirect(response, params, "interaction_required")
    assert await code_rows(running) == 0


async def test_acr_values_pwd_is_met_by_a_password(rp: RegisteredClient, browser: httpx.AsyncClient) -> None:
    await sign_in(browser)
    code_of(await browser.get("/authorize", params=auth_params(rp, acr_values="pwd")), rp)


# -- login_hint ---------------------------------------------------------------------------------------------


async def test_login_hint_prefills_the_email(rp: RegisteredClient, browser: httpx.AsyncClient) -> None:
    response = await browser.get("/authorize", params=auth_params(rp, login_hint="pat@example.com"))

    location = response.headers["location"]
    assert location.startswith("/login?")
    page = await browser.get(location)
    assert page.status_code == 200
    assert 'value="pat@example.com"' in page.text


async def test_login_hint_is_escaped(rp: RegisteredClient, browser: httpx.AsyncClient) -> None:
    response = await browser.get("/authorize", params=auth_params(rp, login_hint='"><script>x</script>'))

    page = await browser.get(response.headers["location"])

    assert "<script>x" not in page.text


# -- consent ---------------------------------------------------------------------------------------------------


@pytest.fixture
async def asking(running: Running) -> RegisteredClient:
    return await make_client(running.idp, "Asking board", require_consent=True)


async def consent_page(browser: httpx.AsyncClient, client: RegisteredClient, **extra: str) -> httpx.Response:
    response = await browser.get("/authorize", params=auth_params(client, **extra))
    assert response.status_code == 200, (response.status_code, response.headers.get("location"))
    assert 'action="/authorize/consent"' in response.text
    assert 'method="post"' in response.text
    assert 'name="csrf_token"' in response.text
    return response


async def decide(browser: httpx.AsyncClient, page: httpx.Response, decision: str) -> httpx.Response:
    form = {**hidden_fields(page.text), "csrf_token": csrf_from(page.text), "decision": decision}
    return await browser.post("/authorize/consent", data=form)


async def test_consent_is_asked_then_remembered(
    running: Running, asking: RegisteredClient, browser: httpx.AsyncClient, backend: httpx.AsyncClient
) -> None:
    await sign_in(browser)
    verifier, challenge = pkce_pair()
    params = auth_params(asking, challenge)
    page = await browser.get("/authorize", params=params)
    assert page.status_code == 200
    assert "Asking board" in page.text
    assert await code_rows(running) == 0

    allowed = await decide(browser, page, "allow")

    answer = query_of(allowed.headers["location"])
    assert answer["state"] == params["state"]
    assert answer["iss"] == "http://testserver"
    claims = await id_token_claims(backend, asking, code_of(allowed, asking), verifier)
    assert claims["nonce"] == params["nonce"]
    # The second time no page: the consent is remembered.
    code_of(await browser.get("/authorize", params=auth_params(asking)), asking)


async def test_consent_after_signing_in(asking: RegisteredClient, browser: httpx.AsyncClient) -> None:
    response = await browser.get("/authorize", params=auth_params(asking))
    page = await sign_in_from(browser, response.headers["location"])

    assert page.status_code == 200
    code_of(await decide(browser, page, "allow"), asking)


async def test_more_scopes_ask_again(asking: RegisteredClient, browser: httpx.AsyncClient) -> None:
    await sign_in(browser)
    page = await consent_page(browser, asking, scope="openid")
    code_of(await decide(browser, page, "allow"), asking)

    await consent_page(browser, asking, scope="openid email")


async def test_prompt_consent_asks_even_when_remembered(asking: RegisteredClient, browser: httpx.AsyncClient) -> None:
    await sign_in(browser)
    code_of(await decide(browser, await consent_page(browser, asking), "allow"), asking)

    page = await consent_page(browser, asking, prompt="consent")

    code_of(await decide(browser, page, "allow"), asking)


async def test_prompt_consent_for_a_client_that_does_not_require_it(
    rp: RegisteredClient, browser: httpx.AsyncClient
) -> None:
    await sign_in(browser)
    page = await consent_page(browser, rp, prompt="consent")
    code_of(await decide(browser, page, "allow"), rp)


async def test_deny_is_access_denied(running: Running, asking: RegisteredClient, browser: httpx.AsyncClient) -> None:
    await sign_in(browser)
    params = auth_params(asking)
    page = await browser.get("/authorize", params=params)

    denied = await decide(browser, page, "deny")

    assert_error_redirect(denied, params, "access_denied")
    assert await code_rows(running) == 0
    # Nothing remembered: the next request asks again.
    await consent_page(browser, asking)


async def test_consent_without_csrf_is_403_and_no_code(
    running: Running, asking: RegisteredClient, browser: httpx.AsyncClient
) -> None:
    await sign_in(browser)
    page = await consent_page(browser, asking)

    fields = {k: v for k, v in hidden_fields(page.text).items() if k != "csrf_token"}
    assert fields["client_id"] == asking.client_id

    missing = await browser.post("/authorize/consent", data={**fields, "decision": "allow"})
    wrong = await browser.post("/authorize/consent", data={**fields, "decision": "allow", "csrf_token": "0" * 64})

    assert missing.status_code == 403
    assert wrong.status_code == 403
    assert "location" not in missing.headers
    assert await code_rows(running) == 0
    await consent_page(browser, asking)  # nothing was remembered


async def test_consent_post_is_checked_again(
    running: Running, asking: RegisteredClient, browser: httpx.AsyncClient
) -> None:
    """A forged consent post with a redirect URI of its own choosing is an error page, never a redirect."""
    await sign_in(browser)
    page = await consent_page(browser, asking)
    form = {**hidden_fields(page.text), "csrf_token": csrf_from(page.text), "decision": "allow"}
    form["redirect_uri"] = "https://evil.example/cb"

    response = await browser.post("/authorize/consent", data=form)

    assert response.status_code == 400
    assert "location" not in response.headers
    assert await code_rows(running) == 0


async def test_consent_post_without_a_session_gives_no_code(
    running: Running, asking: RegisteredClient, browser: httpx.AsyncClient
) -> None:
    await sign_in(browser)
    page = await consent_page(browser, asking)
    form = {**hidden_fields(page.text), "csrf_token": csrf_from(page.text), "decision": "allow"}
    browser.cookies.delete("idp_session")

    response = await browser.post("/authorize/consent", data=form)

    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?")
    assert await code_rows(running) == 0


async def test_prompt_none_when_consent_is_needed_is_consent_required(
    running: Running, asking: RegisteredClient, browser: httpx.AsyncClient
) -> None:
    await sign_in(browser)
    params = auth_params(asking, prompt="none")

    response = await browser.get("/authorize", params=params)

    assert_error_redirect(response, params, "consent_required")
    assert await code_rows(running) == 0


async def test_prompt_login_then_consent_does_not_loop(
    running: Running, asking: RegisteredClient, browser: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await sign_in(browser)
    clock.advance(30)
    params = auth_params(asking, prompt="login consent")

    response = await browser.get("/authorize", params=params)
    assert response.headers["location"].startswith("/login?")
    clock.advance(5)
    page = await sign_in_from(browser, response.headers["location"])
    assert page.status_code == 200, page.headers.get("location")
    clock.advance(5)
    allowed = await decide(browser, page, "allow")

    assert query_of(allowed.headers["location"])["state"] == params["state"]
    code_of(allowed, asking)


# -- step-up and fresh sign-ins with two-step verification ------------------------------------------------------


async def two_step_person(running: Running, clock: FrozenClock) -> str:
    """Give the person an authenticator without ending their sessions (as an import does: enrolling in another
    browser would sign this one out); returns the authenticator secret."""
    [person] = await running.idp.users.list(email="person@example.com", after=None, limit=1)
    secret = await authenticator_added_elsewhere(running, person.id, clock.now())
    clock.advance(31)
    return secret


async def second_step(browser: httpx.AsyncClient, verify_location: str, secret: str, clock: FrozenClock) -> str:
    """Pass /login/verify (as sent there with `next`); returns where it sends the browser on."""
    page = await browser.get(verify_location)
    assert page.status_code == 200, (page.status_code, page.headers.get("location"))
    done = await browser.post(
        "/login/verify",
        data={
            "code": totp_code(secret, clock.now()),
            "csrf_token": csrf_from(page.text),
            "next": query_of(verify_location)["next"],
        },
    )
    assert done.status_code == 303, done.text
    return done.headers["location"]


async def test_step_up_keeps_the_sid_and_auth_time_of_the_session_it_raises(
    running: Running, rp: RegisteredClient, browser: httpx.AsyncClient, backend: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await sign_in(browser)  # password only: two-step verification is turned on afterwards, elsewhere
    secret = await two_step_person(running, clock)
    verifier, challenge = pkce_pair()
    before = await id_token_claims(
        backend, rp, code_of(await browser.get("/authorize", params=auth_params(rp, challenge)), rp), verifier
    )
    assert before["acr"] == "pwd"
    clock.advance(60)

    verifier, challenge = pkce_pair()
    start = await browser.get("/authorize", params=auth_params(rp, challenge, acr_values="mfa"))
    assert start.headers["location"].startswith("/login/verify?")
    after = await id_token_claims(
        backend,
        rp,
        code_of(await browser.get(await second_step(browser, start.headers["location"], secret, clock)), rp),
        verifier,
    )

    assert after["acr"] == "mfa"
    assert (after["sid"], after["auth_time"]) == (before["sid"], before["auth_time"])


@pytest.mark.parametrize("fresh", [{"prompt": "login"}, {"max_age": "30"}])
async def test_a_fresh_sign_in_needs_the_password_not_only_the_second_factor(
    running: Running,
    rp: RegisteredClient,
    browser: httpx.AsyncClient,
    backend: httpx.AsyncClient,
    clock: FrozenClock,
    fresh: dict[str, str],
) -> None:
    await sign_in(browser)
    secret = await two_step_person(running, clock)  # also lets 31 s pass: older than max_age=30
    verifier, challenge = pkce_pair()
    params = auth_params(rp, challenge, acr_values="mfa", **fresh)
    start = await browser.get("/authorize", params=params)
    login_location = start.headers["location"]
    assert login_location.startswith("/login?")
    continuation = query_of(login_location)["next"]

    # Skipping the password: straight to the second step with the continuation.
    shortcut = "/login/verify?" + urlencode({"next": continuation})
    back = await browser.get(await second_step(browser, shortcut, secret, clock))

    assert back.headers["location"].startswith("/login?"), back.headers["location"]
    assert await code_rows(running) == 0

    # With the password (and then the code, in another time step) the request goes through, signed in anew.
    clock.advance(31)
    login = await submit_login(
        browser,
        "person@example.com",
        PASSWORD,
        next_url=query_of(back.headers["location"])["next"],
        form_page=back.headers["location"],
    )
    assert login.headers["location"].startswith("/login/verify?")
    signed_in_at = int(clock.now().timestamp())
    clock.advance(5)
    claims = await id_token_claims(
        backend,
        rp,
        code_of(await browser.get(await second_step(browser, login.headers["location"], secret, clock)), rp),
        verifier,
    )
    assert (claims["acr"], claims["auth_time"]) == ("mfa", signed_in_at)


# -- the sign-in continuation marker: bound to its request, single use ---------------------------------------------


async def fresh_sign_in_flow(
    browser: httpx.AsyncClient, rp: RegisteredClient, **extra: str
) -> tuple[str, httpx.Response]:
    """prompt=login (or `extra`): sent to /login, signed in, back at /authorize; the continuation and its answer."""
    response = await browser.get("/authorize", params=auth_params(rp, **({"prompt": "login"} | extra)))
    location = response.headers["location"]
    assert location.startswith("/login?")
    continuation = query_of(location)["next"]
    login = await submit_login(browser, "person@example.com", PASSWORD, next_url=continuation, form_page=location)
    assert login.headers["location"] == continuation
    return continuation, await browser.get(continuation)


@pytest.mark.parametrize("extra", [{}, {"prompt": "", "max_age": "0"}])
async def test_a_continuation_earns_one_code_only(
    running: Running, rp: RegisteredClient, browser: httpx.AsyncClient, clock: FrozenClock, extra: dict[str, str]
) -> None:
    continuation, answer = await fresh_sign_in_flow(browser, rp, **extra)
    code_of(answer, rp)
    clock.advance(1)

    replayed = await browser.get(continuation)  # from the browser's history, say

    assert replayed.headers["location"].startswith("/login?")
    assert await code_rows(running) == 1


async def test_a_marker_does_not_carry_over_to_another_request(
    running: Running, rp: RegisteredClient, browser: httpx.AsyncClient, clock: FrozenClock
) -> None:
    continuation, answer = await fresh_sign_in_flow(browser, rp)
    code_of(answer, rp)
    old_marker = query_of(continuation)["idp_auth_after"]
    clock.advance(600)

    # Later the relying party asks for a fresh sign-in again; someone at the browser bolts the old marker on.
    for changed in ({}, {"scope": "openid"}, {"max_age": "5"}):
        params = {**auth_params(rp, prompt="login", **changed), "idp_auth_after": old_marker}
        response = await browser.get("/authorize", params=params)
        assert response.headers["location"].startswith("/login?")
    assert await code_rows(running) == 1


async def test_two_uses_of_one_continuation_at_once_give_one_code(
    running: Running, rp: RegisteredClient, browser: httpx.AsyncClient
) -> None:
    response = await browser.get("/authorize", params=auth_params(rp, prompt="login"))
    location = response.headers["location"]
    continuation = query_of(location)["next"]
    await submit_login(browser, "person@example.com", PASSWORD, next_url=continuation, form_page=location)

    answers = await asyncio.gather(browser.get(continuation), browser.get(continuation))

    assert sorted("code=" in a.headers["location"] for a in answers) == [False, True]
    assert await code_rows(running) == 1


async def test_a_marker_older_than_an_hour_is_not_honoured(
    running: Running, rp: RegisteredClient, browser: httpx.AsyncClient, clock: FrozenClock
) -> None:
    response = await browser.get("/authorize", params=auth_params(rp, prompt="login"))
    location = response.headers["location"]
    clock.advance(3601)
    login = await submit_login(
        browser, "person@example.com", PASSWORD, next_url=query_of(location)["next"], form_page=location
    )

    assert (await browser.get(login.headers["location"])).headers["location"].startswith("/login?")
    assert await code_rows(running) == 0


async def test_a_fresh_sign_in_then_consent_gives_a_code(asking: RegisteredClient, browser: httpx.AsyncClient) -> None:
    """The consent page posts the request back without prompt=consent: the marker still fits it."""
    _, page = await fresh_sign_in_flow(browser, asking, prompt="login consent")

    assert page.status_code == 200
    code_of(await decide(browser, page, "allow"), asking)


@pytest.mark.parametrize("marker", ["1.ä.ø", "ø", "x", "1..", "..", "9" * 40 + ".n.s", "1.n.s.extra", "-1.n.s"])
async def test_a_forged_or_malformed_marker_is_ignored(
    running: Running, rp: RegisteredClient, browser: httpx.AsyncClient, marker: str
) -> None:
    await sign_in(browser)

    response = await browser.get("/authorize", params={**auth_params(rp, prompt="login"), "idp_auth_after": marker})

    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?")
    assert await code_rows(running) == 0


async def test_a_continuation_spent_on_one_replica_is_spent_on_the_other(
    running: Running,
    start_app: Callable[[Settings], Coroutine[Any, Any, Running]],
    settings: Settings,
    rp: RegisteredClient,
    browser: httpx.AsyncClient,
) -> None:
    replica_b = await start_app(settings)  # a second app on the same database, as behind a load balancer
    continuation, answer = await fresh_sign_in_flow(browser, rp)
    code_of(answer, rp)

    async with replica_b.client() as same_browser_on_b:
        same_browser_on_b.cookies = browser.cookies
        replayed = await same_browser_on_b.get(continuation)

    assert replayed.headers["location"].startswith("/login?")
    assert await code_rows(running) == 1
