"""Passwords at sign-in: rehash on a cost change, 503 when the pool is full, no timing tell for unknown emails."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
from sqlalchemy import func, select

from idp.config import Settings
from idp.store.models import RateLimitHit, User
from tests.conftest import Running
from tests.support.pages import PASSWORD, csrf_token, make_user, submit_login

StartApp = Callable[[Settings], Coroutine[Any, Any, Running]]
DEFAULT_COST = {"argon2_memory_kib": 19456, "argon2_time_cost": 2}


async def stored_hash(running: Running, email: str = "person@example.com") -> str:
    async with running.idp.db.transaction() as session:
        found = (await session.execute(select(User.password_hash).where(User.email_norm == email))).scalar_one()
    assert found is not None
    return found


async def test_a_new_cost_rehashes_at_the_next_sign_in(
    start_app: StartApp, make_settings: Callable[..., Settings]
) -> None:
    cheap = await start_app(make_settings(argon2_memory_kib=1024, argon2_time_cost=1))
    await make_user(cheap.idp)
    old = await stored_hash(cheap)
    assert old.startswith("$argon2id$v=19$m=1024,t=1,p=1$")

    dearer = await start_app(make_settings(argon2_memory_kib=2048, argon2_time_cost=2))
    async with dearer.client() as client:
        assert (await submit_login(client, "person@example.com", PASSWORD)).status_code == 303
    new = await stored_hash(dearer)
    assert new.startswith("$argon2id$v=19$m=2048,t=2,p=1$")
    assert new != old

    async with dearer.client() as client:
        assert (await submit_login(client, "person@example.com", PASSWORD)).status_code == 303
        assert await stored_hash(dearer) == new  # the cost matches now: no second rehash
    async with dearer.client() as client:
        assert (await submit_login(client, "person@example.com", "not the password")).status_code == 400
    assert await stored_hash(dearer) == new


async def test_a_wrong_password_never_rehashes(start_app: StartApp, make_settings: Callable[..., Settings]) -> None:
    cheap = await start_app(make_settings(argon2_memory_kib=1024, argon2_time_cost=1))
    await make_user(cheap.idp)
    old = await stored_hash(cheap)
    dearer = await start_app(make_settings(argon2_memory_kib=2048, argon2_time_cost=2))
    async with dearer.client() as client:
        assert (await submit_login(client, "person@example.com", "not the password")).status_code == 400
    assert await stored_hash(dearer) == old


async def test_a_full_pool_answers_503_with_retry_after(
    start_app: StartApp, make_settings: Callable[..., Settings]
) -> None:
    running = await start_app(make_settings(password_workers=1, password_queue=0, **DEFAULT_COST))
    emails = [f"person{i}@example.com" for i in range(8)]
    for email in emails:
        await make_user(running.idp, email)
    clients = [running.client(ip=f"203.0.113.{i + 1}") for i in range(len(emails))]
    try:
        tokens = [await csrf_token(client) for client in clients]
        responses = await asyncio.gather(
            *(
                client.post("/login", data={"username": email, "password": PASSWORD, "csrf_token": token})
                for client, email, token in zip(clients, emails, tokens, strict=True)
            )
        )
    finally:
        for client in clients:
            await client.aclose()

    statuses = [response.status_code for response in responses]
    assert 503 in statuses, statuses
    assert 303 in statuses, statuses
    assert set(statuses) <= {303, 503}, statuses
    for response in responses:
        if response.status_code == 503:
            assert int(response.headers["retry-after"]) >= 1
            assert "try again" in response.text
    # Attempts the pool refused were never tried: they do not count towards the attempt limits.
    async with running.idp.db.transaction() as session:
        assert (await session.execute(select(func.count()).select_from(RateLimitHit))).scalar_one() == 0
    async with running.client(base_url="http://testserver:9000") as client:  # the management port
        metrics = (await client.get("/metrics")).text
    assert f'idp_login_attempts_total{{outcome="overloaded"}} {float(statuses.count(503))}' in metrics


async def timed_sign_in(client: httpx.AsyncClient, email: str, password: str) -> float:
    data = {"username": email, "password": password, "csrf_token": await csrf_token(client)}
    started = time.perf_counter()
    response = await client.post("/login", data=data)
    elapsed = time.perf_counter() - started
    assert response.status_code == 400
    return elapsed


async def test_an_unknown_email_costs_what_a_wrong_password_costs(
    start_app: StartApp, make_settings: Callable[..., Settings]
) -> None:
    running = await start_app(
        make_settings(
            **DEFAULT_COST,
            password_workers=1,
            login_max_failures_per_account=1000,
            login_max_failures_per_address=1000,
        )
    )
    await make_user(running.idp)
    unknown: list[float] = []
    known: list[float] = []
    async with running.client() as client:
        await timed_sign_in(client, "warm-up@example.com", "wrong password")
        for i in range(7):  # interleaved, so a slow moment of the machine hits both alike
            unknown.append(await timed_sign_in(client, f"nobody{i}@example.com", "wrong password"))
            known.append(await timed_sign_in(client, "person@example.com", "wrong password"))

    ratio = statistics.median(unknown) / statistics.median(known)
    assert 0.6 <= ratio <= 1.6, (ratio, unknown, known)
    # Both really paid for an argon2 verification at the configured cost, not a shortcut.
    started = time.perf_counter()
    await running.idp.passwords.verify(None, "x")
    one_verification = time.perf_counter() - started
    assert statistics.median(unknown) >= 0.5 * one_verification
