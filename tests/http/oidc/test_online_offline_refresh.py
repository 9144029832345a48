"""INTERFACE §3: a refresh token without offline_access is bound to its IdP session and dies with it; one with
offline_access survives sign-out (but not the person-wide events); refreshed ID tokens never name a dead `sid`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from idp.clock import FrozenClock
from idp.store.models import User
from tests.conftest import Running
from tests.support.admin import API, admin_client, audit_events, refresh, tokens_for
from tests.support.oidc import RegisteredClient, decode_id_token, make_client
from tests.support.pages import PASSWORD, csrf_from, submit_login
from tests.support.wire import assert_json_error

ONLINE = "openid email"
OFFLINE = "openid email offline_access"


async def sign_out_at_idp(running: Running, browser: httpx.AsyncClient, clock: FrozenClock, sid: str) -> None:
    page = await browser.get("/logout")
    assert (await browser.post("/logout", data={"csrf_token": csrf_from(page.text)})).status_code == 200


async def end_session_from_the_rp(running: Running, browser: httpx.AsyncClient, clock: FrozenClock, sid: str) -> None:
    page = await browser.get("/end_session")
    done = await browser.post("/end_session/confirm", data={"csrf_token": csrf_from(page.text)})
    # No post_logout_redirect_uri: idp's own signed-out page, not a redirect.
    assert done.status_code == 200, done.text
    assert "location" not in done.headers


async def idle_too_long(running: Running, browser: httpx.AsyncClient, clock: FrozenClock, sid: str) -> None:
    clock.advance(running.idp.settings.session_idle_seconds + 1)


async def past_the_absolute_limit(running: Running, browser: httpx.AsyncClient, clock: FrozenClock, sid: str) -> None:
    # Active every few minutes, so only the absolute limit can end it.
    step = running.idp.settings.session_idle_seconds // 2
    for _ in range(running.idp.settings.session_absolute_seconds // step + 1):
        clock.advance(step)
        await browser.get("/account")


async def sign_out_on_the_sessions_page(
    running: Running, browser: httpx.AsyncClient, clock: FrozenClock, sid: str
) -> None:
    async with running.client() as other:  # the same person, another browser, signs the first one out
        me = (await browser.get("/account/sessions")).text
        assert sid in me
        await submit_login(other, "person@example.com", PASSWORD)
        page = await other.get("/account/sessions")
        done = await other.post("/account/sessions/sign-out", data={"session": sid, "csrf_token": csrf_from(page.text)})
        assert done.status_code == 303, done.text
        assert done.headers["location"] == "/account/sessions?done=one"


SESSION_ENDS: dict[str, Callable[[Running, httpx.AsyncClient, FrozenClock, str], Awaitable[None]]] = {
    "sign-out": sign_out_at_idp,
    "end_session": end_session_from_the_rp,
    "idle expiry": idle_too_long,
    "absolute expiry": past_the_absolute_limit,
    "sessions page": sign_out_on_the_sessions_page,
}


async def sid_of(running: Running, tokens: dict[str, Any]) -> str:
    async with running.client() as rp:
        sid: str = (await decode_id_token(rp, tokens["id_token"]))["sid"]
    return sid


@pytest.mark.parametrize("name", list(SESSION_ENDS))
async def test_an_online_refresh_token_dies_with_its_session_and_an_offline_one_survives(
    name: str, running: Running, browser: httpx.AsyncClient, clock: FrozenClock
) -> None:
    rp = await make_client(running.idp)
    online = await tokens_for(running, browser, rp, scope=ONLINE)
    offline = await tokens_for(running, browser, rp, scope=OFFLINE)
    sid = await sid_of(running, online)
    # While the session is on, both refresh, and the online one's ID token names the session.
    renewed = await refresh(running, rp, online["refresh_token"])
    assert renewed.status_code == 200, renewed.text
    assert await sid_of(running, renewed.json()) == sid

    await SESSION_ENDS[name](running, browser, clock, sid)

    assert_json_error(await refresh(running, rp, renewed.json()["refresh_token"]), "invalid_grant")
    survived = await refresh(running, rp, offline["refresh_token"])
    assert survived.status_code == 200, survived.text
    async with running.client() as backend:
        claims = await decode_id_token(backend, survived.json()["id_token"])
    assert "sid" not in claims  # the session it named has ended
    # The offline grant keeps going.
    assert (await refresh(running, rp, survived.json()["refresh_token"])).status_code == 200


async def test_an_offline_refresh_while_the_session_is_on_names_it(
    running: Running, browser: httpx.AsyncClient
) -> None:
    rp = await make_client(running.idp)
    offline = await tokens_for(running, browser, rp, scope=OFFLINE)

    renewed = await refresh(running, rp, offline["refresh_token"])

    assert await sid_of(running, renewed.json()) == await sid_of(running, offline)


async def test_a_refresh_does_not_keep_the_session_alive(
    running: Running, browser: httpx.AsyncClient, clock: FrozenClock
) -> None:
    rp = await make_client(running.idp)
    token = (await tokens_for(running, browser, rp, scope=ONLINE))["refresh_token"]
    half = running.idp.settings.session_idle_seconds // 2 + 1
    clock.advance(half)
    token = (await refresh(running, rp, token)).json()["refresh_token"]
    clock.advance(half)  # idle for longer than the limit, though the job board refreshed in between

    assert_json_error(await refresh(running, rp, token), "invalid_grant")
    signed_out = await browser.get("/account")
    assert signed_out.status_code == 303
    assert signed_out.headers["location"] == "/login?next=%2Faccount"


async def operator_revokes(running: Running, person: User) -> None:
    async with await admin_client(running) as admin:
        assert (await admin.post(f"{API}/users/{person.id}/sessions/revoke")).status_code == 204


async def operator_disables(running: Running, person: User) -> None:
    async with await admin_client(running) as admin:
        assert (await admin.patch(f"{API}/users/{person.id}", json={"disabled": True})).status_code == 200


async def operator_resets_two_step(running: Running, person: User) -> None:
    async with await admin_client(running) as admin:
        reset = await admin.post(f"{API}/users/{person.id}/mfa/reset", json={"reason": "identity checked"})
        assert reset.status_code == 200, reset.text


@pytest.mark.parametrize("event", [operator_revokes, operator_disables, operator_resets_two_step])
async def test_an_offline_refresh_token_dies_on_the_person_wide_events(
    event: Callable[[Running, User], Awaitable[None]],
    running: Running,
    browser: httpx.AsyncClient,
    person: User,
) -> None:
    rp = await make_client(running.idp)
    offline = await tokens_for(running, browser, rp, scope=OFFLINE)

    await event(running, person)

    assert_json_error(await refresh(running, rp, offline["refresh_token"]), "invalid_grant")


async def test_a_refused_online_refresh_is_not_taken_for_reuse(
    running: Running, browser: httpx.AsyncClient, clock: FrozenClock
) -> None:
    """The token died with its session; presenting it is not a replay and revokes nothing else."""
    rp: RegisteredClient = await make_client(running.idp)
    online = await tokens_for(running, browser, rp, scope=ONLINE)
    clock.advance(running.idp.settings.session_idle_seconds + 1)

    assert_json_error(await refresh(running, rp, online["refresh_token"]), "invalid_grant")
    assert await audit_events(running, "token.refresh_reuse") == []
