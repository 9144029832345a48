"""The outbox delivering logout tokens (INTERFACE §3): retried with back-off through errors, time-outs and an
endpoint that is down while idp restarts, delivered exactly once when it is back; given up after a day with an
audit entry; sign-out never waits for it; two processes on one database deliver each message once."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import generate_latest
from sqlalchemy import select

from idp.clock import FrozenClock
from idp.config import Settings
from idp.services.outbox import backoff
from idp.store.models import AuditEvent, OutboxMessage, User
from tests.conftest import Running
from tests.support.admin import tokens_for
from tests.support.oidc import make_client
from tests.support.pages import PASSWORD, csrf_from, make_user, submit_login
from tests.support.receiver import Receiver, published_jwks, validate_logout_token

StartApp = Callable[..., Coroutine[Any, Any, Running]]


async def sign_out(browser: httpx.AsyncClient) -> httpx.Response:
    page = await browser.get("/logout")
    return await browser.post("/logout", data={"csrf_token": csrf_from(page.text)})


async def waiting(running: Running) -> list[OutboxMessage]:
    async with running.idp.db.transaction() as session:
        return list((await session.execute(select(OutboxMessage))).scalars().all())


def metric(running: Running, name: str) -> float:
    for line in generate_latest(running.idp.metrics.registry).decode().splitlines():
        if line.startswith(name + '{kind="backchannel_logout"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_errors_time_outs_and_an_endpoint_down_across_a_restart_then_exactly_once(
    running: Running,
    start_app: StartApp,
    settings: Settings,
    browser: httpx.AsyncClient,
    person: User,
    clock: FrozenClock,
    board: Receiver,
) -> None:
    rp = await make_client(running.idp, backchannel_logout_uri=board.uri)
    await tokens_for(running, browser, rp)
    assert (await sign_out(browser)).status_code == 200
    board.answers[:] = ["500", "hang"]

    assert await running.idp.outbox.run_once() == 1  # 500
    assert await running.idp.outbox.run_once() == 0  # backing off: not due yet
    (message,) = await waiting(running)
    assert message.attempts == 1
    assert message.last_error == "answered HTTP 500"
    assert message.next_attempt_at > clock.now()

    clock.advance(3600)
    assert await running.idp.outbox.run_once() == 1  # no answer within the time-out
    (message,) = await waiting(running)
    assert message.last_error == "timed out"

    board.stop()  # down, and idp restarts meanwhile: the message waits in the database
    clock.advance(3600)
    assert await running.idp.outbox.run_once() == 1
    (message,) = await waiting(running)
    assert message.attempts == 3
    assert message.last_error.startswith("no answer")
    restarted = await start_app(settings)

    board.start()  # back, on the same address
    clock.advance(3600)
    assert await restarted.idp.outbox.run_once() == 1
    assert await restarted.idp.outbox.run_once() == 0
    assert await running.idp.outbox.run_once() == 0
    (token,) = board.tokens  # exactly once
    async with restarted.client() as rp_backend:
        validate_logout_token(
            token, await published_jwks(rp_backend), issuer="http://testserver", client_id=rp.client_id
        )
    assert await waiting(restarted) == []
    assert metric(running, "idp_outbox_delivery_failures_total") == 3
    assert metric(restarted, "idp_outbox_messages_sent_total") == 1


async def test_a_retry_is_signed_afresh(
    running: Running, browser: httpx.AsyncClient, clock: FrozenClock, board: Receiver
) -> None:
    """A token that waited in the outbox is signed at its try: a late delivery is not already expired."""
    rp = await make_client(running.idp, backchannel_logout_uri=board.uri)
    await tokens_for(running, browser, rp)
    await sign_out(browser)
    board.answers[:] = ["500"]
    await running.idp.outbox.run_once()
    clock.advance(3600)
    await running.idp.outbox.run_once()
    (token,) = board.tokens
    async with running.client() as rp_backend:
        claims = validate_logout_token(
            token, await published_jwks(rp_backend), issuer="http://testserver", client_id=rp.client_id
        )
    assert claims["iat"] == int(clock.now().timestamp())
    assert await waiting(running) == []


async def test_given_up_after_a_day_with_an_audit_entry_and_no_secret(
    running: Running, browser: httpx.AsyncClient, person: User, clock: FrozenClock, board: Receiver
) -> None:
    rp = await make_client(running.idp, backchannel_logout_uri=board.uri)
    await tokens_for(running, browser, rp)
    await sign_out(browser)
    board.answers[:] = ["500"] * 40
    tries = 0
    while await waiting(running):
        assert await running.idp.outbox.run_once() == 1
        tries += 1
        clock.advance(3600)
    assert 20 <= tries <= 30  # about hourly once the back-off reaches its ceiling, for a day
    async with running.idp.db.transaction() as session:
        (event,) = (await session.execute(select(AuditEvent).where(AuditEvent.type == "outbox.given_up"))).scalars()
    assert event.user_id == person.id
    assert event.outcome == "failure"
    details = json.loads(event.details)
    assert details["client_id"] == rp.client_id
    assert details["kind"] == "backchannel_logout"
    assert details["reason"] == "answered HTTP 500"
    assert "sid" not in details
    assert "eyJ" not in event.details  # no JWT
    assert metric(running, "idp_outbox_messages_given_up_total") == 1
    assert board.tokens == []


def test_back_off_grows_with_jitter_up_to_an_hour() -> None:
    rng = random.Random(7)
    first = [backoff(1, rng) for _ in range(50)]
    assert all(timedelta(seconds=2.5) <= d <= timedelta(seconds=5) for d in first)
    assert len(set(first)) > 40  # jittered
    assert all(timedelta(seconds=5) <= backoff(2, rng) <= timedelta(seconds=10) for _ in range(50))
    assert all(timedelta(minutes=30) <= backoff(n, rng) <= timedelta(hours=1) for n in (11, 12, 50, 10_000))


async def test_sign_out_answers_before_the_first_delivery_finishes(
    start_app: StartApp, make_settings: Callable[..., Settings], board: Receiver
) -> None:
    # The worker runs on its own here, polling often; the board holds every request until the test says so.
    running = await start_app(make_settings(outbox_poll_seconds=0.05))
    person = await make_user(running.idp)
    rp = await make_client(running.idp, backchannel_logout_uri=board.uri)
    async with running.client() as browser:
        assert (await submit_login(browser, person.email, PASSWORD)).status_code == 303
        await tokens_for(running, browser, rp)
        board.answers[:] = ["block"]

        response = await sign_out(browser)

        assert response.status_code == 200
        assert board.tokens == []  # sign-out has answered; the delivery has not finished
    board.release.set()
    for _ in range(400):
        if board.tokens:
            break
        await asyncio.sleep(0.05)
    assert len(board.tokens) == 1


async def test_two_processes_deliver_each_message_exactly_once(
    running: Running, start_app: StartApp, settings: Settings, board: Receiver
) -> None:
    people = 30
    other = await start_app(settings)
    rp = await make_client(running.idp, backchannel_logout_uri=board.uri)
    for n in range(people):
        person = await make_user(running.idp, f"p{n}@example.com")
        async with running.client() as browser:
            assert (await submit_login(browser, person.email, PASSWORD)).status_code == 303
            await tokens_for(running, browser, rp)
            await sign_out(browser)
    assert len(await waiting(running)) == people

    tried = 0
    while True:
        rounds = await asyncio.gather(
            running.idp.outbox.run_once(), other.idp.outbox.run_once(), running.idp.outbox.run_once()
        )
        if not any(rounds):
            break
        tried += sum(rounds)
    assert tried == people
    assert len(board.tokens) == people
    assert len(set(board.tokens)) == people
    assert await waiting(running) == []


async def test_no_logout_token_in_the_logs_or_the_outbox(
    running: Running,
    browser: httpx.AsyncClient,
    clock: FrozenClock,
    board: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rp = await make_client(running.idp, backchannel_logout_uri=board.uri)
    await tokens_for(running, browser, rp)
    caplog.set_level(logging.DEBUG)
    await sign_out(browser)
    (message,) = await waiting(running)
    assert "eyJ" not in message.payload  # the token is signed at delivery, never stored
    board.answers[:] = ["500"]
    await running.idp.outbox.run_once()
    clock.advance(3600)
    await running.idp.outbox.run_once()
    (token,) = board.tokens
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "try 1 failed: answered HTTP 500" in logged
    assert token not in logged
    assert token.split(".")[1] not in logged
