"""INTERFACE §3: codes not yet redeemed and refresh tokens stop working when an operator revokes the person's
sessions, resets or the person turns two-step verification on or off, or the account is disabled; a disabled
person's code or refresh token is refused however the account came to be disabled."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import select

from idp.clock import FrozenClock
from idp.store import users as users_store
from idp.store.models import AuditEvent, User
from tests.conftest import Running
from tests.support.admin import API, admin_client, refresh, tokens_for
from tests.support.mfa import enroll
from tests.support.oidc import RegisteredClient, auth_params, exchange, make_client, sign_in_and_authorize
from tests.support.pages import csrf_from
from tests.support.wire import assert_json_error


@dataclass
class Scene:
    running: Running
    browser: httpx.AsyncClient
    person: User
    clock: FrozenClock
    backup_codes: list[str]


async def operator_revokes_sessions(scene: Scene) -> None:
    async with await admin_client(scene.running) as admin:
        assert (await admin.post(f"{API}/users/{scene.person.id}/sessions/revoke")).status_code == 204


async def operator_resets_two_step(scene: Scene) -> None:
    async with await admin_client(scene.running) as admin:
        reset = await admin.post(f"{API}/users/{scene.person.id}/mfa/reset", json={"reason": "lost phone, id seen"})
        assert reset.status_code == 200, reset.text


async def operator_disables(scene: Scene) -> None:
    async with await admin_client(scene.running) as admin:
        response = await admin.patch(f"{API}/users/{scene.person.id}", json={"disabled": True})
        assert response.status_code == 200, response.text


async def person_turns_two_step_off(scene: Scene) -> None:
    page = await scene.browser.get("/account/security")
    done = await scene.browser.post(
        "/account/security/disable", data={"code": scene.backup_codes[0], "csrf_token": csrf_from(page.text)}
    )
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/account/security?done=disabled"


async def person_turns_two_step_on(scene: Scene) -> None:
    await enroll(scene.browser, scene.clock.now())


EVENTS: dict[str, tuple[Callable[[Scene], Awaitable[None]], bool]] = {
    # name: (the event, whether two-step verification is on before it)
    "operator revoke": (operator_revokes_sessions, False),
    "mfa reset": (operator_resets_two_step, True),
    "disable": (operator_disables, False),
    "totp disable": (person_turns_two_step_off, True),
    "totp enable": (person_turns_two_step_on, False),
}


async def redeem(running: Running, rp: RegisteredClient, code: str) -> httpx.Response:
    async with running.client() as backend:
        return await exchange(backend, rp, code)


@pytest.mark.parametrize("name", list(EVENTS))
async def test_codes_and_refresh_tokens_issued_before_the_event_are_invalid_grant(
    name: str, running: Running, browser: httpx.AsyncClient, person: User, clock: FrozenClock
) -> None:
    event, two_step_on = EVENTS[name]
    rp = await make_client(running.idp)
    backup_codes = (await enroll(browser, clock.now()))[1] if two_step_on else []
    tokens = await tokens_for(running, browser, rp, scope="openid offline_access")
    unredeemed = (await sign_in_and_authorize(browser, auth_params(rp)))["code"]

    await event(Scene(running, browser, person, clock, backup_codes))

    assert_json_error(await redeem(running, rp, unredeemed), "invalid_grant")
    assert_json_error(await refresh(running, rp, tokens["refresh_token"]), "invalid_grant")
    async with running.idp.db.transaction() as session:
        details = (await session.execute(select(AuditEvent.details))).scalars().all()
    assert sum('"unredeemed_ended": 1' in d for d in details) == 1, details  # the event says what it ended


async def test_enabling_two_step_ends_the_other_sessions_of_the_person(
    running: Running, browser: httpx.AsyncClient, person: User, clock: FrozenClock
) -> None:
    rp = await make_client(running.idp)
    async with running.client() as laptop:
        await sign_in_and_authorize(laptop, auth_params(rp))  # signed in with the password alone
        assert (await laptop.get("/account")).status_code == 200

        await enroll(browser, clock.now())

        signed_out = await laptop.get("/account")
        assert signed_out.status_code == 303
        assert signed_out.headers["location"] == "/login?next=%2Faccount"
        assert (await browser.get("/account")).status_code == 200  # the session that enrolled stays
        # The laptop has to sign in again, and now the second step is asked for.
        assert (await laptop.get("/authorize", params=auth_params(rp))).headers["location"].startswith("/login?")


async def disable_behind_the_services_back(running: Running, person: User) -> None:
    """An account disabled without the revocation (a release before this rule, or a direct SQL fix)."""
    async with running.idp.db.transaction() as session:
        await users_store.update_user(session, person.id, {"disabled": True})


async def test_a_disabled_persons_refresh_token_and_code_are_refused(
    running: Running, browser: httpx.AsyncClient, person: User
) -> None:
    rp = await make_client(running.idp)
    tokens = await tokens_for(running, browser, rp, scope="openid offline_access")
    unredeemed = (await sign_in_and_authorize(browser, auth_params(rp)))["code"]

    await disable_behind_the_services_back(running, person)

    assert_json_error(await refresh(running, rp, tokens["refresh_token"]), "invalid_grant")
    assert_json_error(await redeem(running, rp, unredeemed), "invalid_grant")
    # Re-enabled, the burned code stays burned; the refresh token was only refused, not used.
    async with running.idp.db.transaction() as session:
        await users_store.update_user(session, person.id, {"disabled": False})
    assert_json_error(await redeem(running, rp, unredeemed), "invalid_grant")
    assert (await refresh(running, rp, tokens["refresh_token"])).status_code == 200
