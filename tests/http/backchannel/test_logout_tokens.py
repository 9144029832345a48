"""OIDC Back-Channel Logout 1.0 (INTERFACE §3): every way an idp session ends sends each client signed in through
it, and registered for it, exactly one logout token, validated here as a job board would (joserfc, idp's JWKS)."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import select

from idp.clock import FrozenClock
from idp.store.models import OutboxMessage, User
from tests.conftest import Running
from tests.support.admin import API, admin_client, tokens_for
from tests.support.mfa import enroll
from tests.support.oidc import RegisteredClient, auth_params, decode_id_token, make_client, sign_in_and_authorize
from tests.support.pages import PASSWORD, csrf_from, submit_login
from tests.support.receiver import Receiver, published_jwks, validate_logout_token


@dataclass
class Scene:
    running: Running
    browser: httpx.AsyncClient
    person: User
    clock: FrozenClock
    rp: RegisteredClient
    id_token: str


async def sign_out_at_idp(scene: Scene) -> None:
    page = await scene.browser.get("/logout")
    done = await scene.browser.post("/logout", data={"csrf_token": csrf_from(page.text)})
    assert done.status_code == 200, done.text


async def end_session_with_hint(scene: Scene) -> None:
    done = await scene.browser.get("/end_session", params={"id_token_hint": scene.id_token})
    assert done.status_code == 200, done.text


async def end_session_confirmed(scene: Scene) -> None:
    page = await scene.browser.get("/end_session", params={"client_id": scene.rp.client_id})
    done = await scene.browser.post("/end_session/confirm", data={"csrf_token": csrf_from(page.text)})
    assert done.status_code == 200, done.text


async def idle_expiry_found_by_housekeeping(scene: Scene) -> None:
    scene.clock.advance(scene.running.idp.settings.session_idle_seconds + 1)
    async with scene.running.idp.db.transaction() as session:
        assert await scene.running.idp.sessions.purge_expired(session) == 1


async def absolute_expiry_found_on_a_page_load(scene: Scene) -> None:
    # Kept busy, so only the absolute limit ends it.
    for _ in range(scene.running.idp.settings.session_absolute_seconds // 1000 + 1):
        scene.clock.advance(1000)
        await scene.browser.get("/account")
    assert (await scene.browser.get("/account")).status_code == 303


async def operator_revokes(scene: Scene) -> None:
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


async def operator_deletes(scene: Scene) -> None:
    async with await admin_client(scene.running) as admin:
        assert (await admin.delete(f"{API}/users/{scene.person.id}")).status_code == 204


async def two_step_turned_on_in_another_session(scene: Scene) -> None:
    async with scene.running.client() as laptop:
        assert (await submit_login(laptop, scene.person.email, PASSWORD)).status_code == 303
        await enroll(laptop, scene.clock.now())
        assert (await laptop.get("/account")).status_code == 200  # the session that enrolled stays
    assert (await scene.browser.get("/account")).status_code == 303


async def signed_out_from_another_browser(scene: Scene) -> None:
    """The person ends this browser's session from /account/sessions on their laptop."""
    sid = (await decode_id_token(scene.browser, scene.id_token))["sid"]
    async with scene.running.client() as laptop:
        assert (await submit_login(laptop, scene.person.email, PASSWORD)).status_code == 303
        page = await laptop.get("/account/sessions")
        done = await laptop.post(
            "/account/sessions/sign-out", data={"session": sid, "csrf_token": csrf_from(page.text)}
        )
        assert done.status_code == 303, done.text
    assert (await scene.browser.get("/account")).status_code == 303


async def everywhere_else_from_another_browser(scene: Scene) -> None:
    async with scene.running.client() as laptop:
        assert (await submit_login(laptop, scene.person.email, PASSWORD)).status_code == 303
        page = await laptop.get("/account/sessions")
        done = await laptop.post("/account/sessions/sign-out-others", data={"csrf_token": csrf_from(page.text)})
        assert done.status_code == 303, done.text
    assert (await scene.browser.get("/account")).status_code == 303


EVENTS: dict[str, Callable[[Scene], Awaitable[None]]] = {
    "sign-out at idp": sign_out_at_idp,
    "end_session with id_token_hint": end_session_with_hint,
    "end_session confirmed": end_session_confirmed,
    "idle expiry (housekeeping)": idle_expiry_found_by_housekeeping,
    "absolute expiry (page load)": absolute_expiry_found_on_a_page_load,
    "operator revoke": operator_revokes,
    "mfa reset": operator_resets_two_step,
    "account disabled": operator_disables,
    "account deleted": operator_deletes,
    "two-step turned on elsewhere": two_step_turned_on_in_another_session,
    "signed out on the sessions page": signed_out_from_another_browser,
    "everywhere else, on the sessions page": everywhere_else_from_another_browser,
}


async def queued(running: Running) -> list[OutboxMessage]:
    async with running.idp.db.transaction() as session:
        return list((await session.execute(select(OutboxMessage))).scalars().all())


@pytest.mark.parametrize("name", list(EVENTS))
async def test_each_session_end_sends_one_logout_token_to_each_signed_in_board(
    name: str, running: Running, browser: httpx.AsyncClient, person: User, clock: FrozenClock, board: Receiver
) -> None:
    rp = await make_client(running.idp, "Nordic Jobs", backchannel_logout_uri=board.uri)
    also_signed_in = await make_client(running.idp, "Fjord Careers", backchannel_logout_uri=board.uri + "?b=2")
    await make_client(running.idp, "Never used", backchannel_logout_uri=board.uri + "?c=3")
    no_uri = await make_client(running.idp, "No back-channel")
    tokens = await tokens_for(running, browser, rp)
    await tokens_for(running, browser, also_signed_in)
    await tokens_for(running, browser, no_uri)
    async with running.client() as rp_backend:
        sid = (await decode_id_token(rp_backend, tokens["id_token"]))["sid"]
        jwks = await published_jwks(rp_backend)

    await EVENTS[name](Scene(running, browser, person, clock, rp, tokens["id_token"]))
    assert board.tries == 0  # queued, not sent, by the request that ended the session
    assert await running.idp.outbox.run_once() == 2
    assert await running.idp.outbox.run_once() == 0

    audiences = []
    for token in board.tokens:
        claims = validate_logout_token(token, jwks, issuer="http://testserver", client_id=token_audience(token))
        assert claims["sub"] == person.id
        assert claims["sid"] == sid
        audiences.append(claims["aud"])
    assert sorted(audiences) == sorted([rp.client_id, also_signed_in.client_id])
    assert await queued(running) == []


def token_audience(token: str) -> str:
    """The `aud` a job board expects is its own client id; read it here to pick which one to check against."""
    body = token.split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))["aud"])


async def test_the_token_is_signed_with_the_clients_id_token_algorithm(
    running: Running, browser: httpx.AsyncClient, person: User, clock: FrozenClock, board: Receiver
) -> None:
    rp = await make_client(running.idp, id_token_alg="ES256", backchannel_logout_uri=board.uri)
    tokens = await tokens_for(running, browser, rp)
    await sign_out_at_idp(Scene(running, browser, person, clock, rp, tokens["id_token"]))
    assert await running.idp.outbox.run_once() == 1
    (token,) = board.tokens
    async with running.client() as rp_backend:
        jwks = await published_jwks(rp_backend)
    validate_logout_token(token, jwks, issuer="http://testserver", client_id=rp.client_id)
    assert json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))["alg"] == "ES256"


async def test_a_session_that_signed_in_to_no_board_queues_nothing(
    running: Running, browser: httpx.AsyncClient, person: User, clock: FrozenClock, board: Receiver
) -> None:
    rp = await make_client(running.idp, backchannel_logout_uri=board.uri)
    await sign_out_at_idp(Scene(running, browser, person, clock, rp, ""))
    assert await queued(running) == []


async def test_a_code_not_yet_redeemed_counts_as_signed_in(
    running: Running, browser: httpx.AsyncClient, person: User, clock: FrozenClock, board: Receiver
) -> None:
    rp = await make_client(running.idp, backchannel_logout_uri=board.uri)
    await sign_in_and_authorize(browser, auth_params(rp))
    await sign_out_at_idp(Scene(running, browser, person, clock, rp, ""))
    assert await running.idp.outbox.run_once() == 1
    assert len(board.tokens) == 1
