"""Sign-in attempt limits per account and per address (INTERFACE §4): 429 with Retry-After, shared by replicas."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
from sqlalchemy import func, select

from idp.clock import FrozenClock
from idp.config import Settings
from idp.store.models import AuditEvent, LoginSession, RateLimitHit
from tests.conftest import Running
from tests.support.pages import PASSWORD, make_user, submit_login

StartApp = Callable[[Settings], Coroutine[Any, Any, Running]]
WRONG = "not the right password"
EMAIL = "person@example.com"


async def fail(client: httpx.AsyncClient, times: int, email: str = EMAIL) -> None:
    for _ in range(times):
        response = await submit_login(client, email, WRONG)
        assert response.status_code == 400


def assert_locked(response: httpx.Response, max_seconds: int = 901) -> int:
    """A lockout page: 429, Retry-After in seconds, and a page that says in how many minutes to come back."""
    assert response.status_code == 429
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= max_seconds
    minutes = math.ceil(retry_after / 60)
    assert f"try again in {minutes} minute" in response.text
    assert "idp_session" not in response.headers.get("set-cookie", "")
    return retry_after


async def audit_types(running: Running) -> list[str]:
    async with running.idp.db.transaction() as session:
        return list((await session.execute(select(AuditEvent.type).order_by(AuditEvent.id))).scalars())


async def count(running: Running, model: type) -> int:
    async with running.idp.db.transaction() as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar_one()


def test_defaults_are_five_per_account_fifty_per_address_fifteen_minutes(settings: Settings) -> None:
    assert settings.login_max_failures_per_account == 5
    assert settings.login_max_failures_per_address == 50
    assert settings.login_failure_window_seconds == 900


async def test_sixth_attempt_is_refused_even_with_the_right_password(
    running: Running, client: httpx.AsyncClient
) -> None:
    await make_user(running.idp)
    await fail(client, 5)

    response = await submit_login(client, EMAIL, PASSWORD)

    retry_after = assert_locked(response)
    assert retry_after > 840  # the first failure happened just now: nearly the whole window is left
    assert await count(running, LoginSession) == 0
    assert (await client.get("/account")).status_code == 303


async def test_lockout_is_audited(running: Running, client: httpx.AsyncClient) -> None:
    await make_user(running.idp)
    await fail(client, 5)
    assert_locked(await submit_login(client, EMAIL, PASSWORD))
    assert await audit_types(running) == ["login.failure"] * 5 + ["login.locked"]
    async with running.idp.db.transaction() as session:
        locked = (await session.execute(select(AuditEvent).where(AuditEvent.type == "login.locked"))).scalar_one()
    assert locked.client_ip == "198.51.100.7"
    assert PASSWORD not in locked.details


async def test_refused_attempts_do_not_extend_the_window(
    running: Running, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await make_user(running.idp)
    await fail(client, 5)
    hits = await count(running, RateLimitHit)
    first = assert_locked(await submit_login(client, EMAIL, WRONG))

    clock.advance(600)
    later = assert_locked(await submit_login(client, EMAIL, WRONG))

    assert later == first - 600
    assert f"try again in {math.ceil(later / 60)} minutes" in (await submit_login(client, EMAIL, PASSWORD)).text
    assert await count(running, RateLimitHit) == hits


async def test_the_window_passes_by_itself(running: Running, client: httpx.AsyncClient, clock: FrozenClock) -> None:
    await make_user(running.idp)
    await fail(client, 5)
    retry_after = assert_locked(await submit_login(client, EMAIL, PASSWORD))

    clock.advance(retry_after)
    response = await submit_login(client, EMAIL, PASSWORD)

    assert response.status_code == 303
    assert (await client.get("/account")).status_code == 200


async def test_sliding_window_frees_one_slot_per_aged_out_failure(
    running: Running, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await make_user(running.idp)
    await fail(client, 1)
    clock.advance(300)
    await fail(client, 4)
    retry_after = assert_locked(await submit_login(client, EMAIL, PASSWORD))
    assert retry_after <= 601  # the oldest failure leaves the window 600 s from now

    clock.advance(retry_after)
    await fail(client, 1)  # the one freed slot is used up by a new failure
    assert_locked(await submit_login(client, EMAIL, PASSWORD))


async def test_a_success_resets_the_account_counter(running: Running, client: httpx.AsyncClient) -> None:
    await make_user(running.idp)
    await fail(client, 4)
    assert (await submit_login(client, EMAIL, PASSWORD)).status_code == 303

    client.cookies.clear()  # signed out again: the form is shown
    await fail(client, 4)
    assert (await submit_login(client, EMAIL, PASSWORD)).status_code == 303
    client.cookies.clear()
    await fail(client, 4)
    assert await count(running, RateLimitHit) == 12 + 4  # the address keeps all 12 failures, the account 4


async def test_the_account_limit_holds_across_addresses(running: Running) -> None:
    await make_user(running.idp)
    for i in range(5):
        async with running.client(ip=f"203.0.113.{i + 1}") as client:
            await fail(client, 1)
    async with running.client(ip="203.0.113.200") as client:
        assert_locked(await submit_login(client, EMAIL, PASSWORD))


async def test_other_accounts_are_not_affected(running: Running, client: httpx.AsyncClient) -> None:
    await make_user(running.idp)
    await make_user(running.idp, "other@example.com")
    await fail(client, 5)
    assert (await submit_login(client, "other@example.com", PASSWORD)).status_code == 303


async def test_email_case_and_spaces_do_not_escape_the_account_limit(
    running: Running, client: httpx.AsyncClient
) -> None:
    await make_user(running.idp)
    for variant in ["person@example.com", "PERSON@example.com", " person@example.com", "Person@Example.COM", EMAIL]:
        await fail(client, 1, variant)
    assert_locked(await submit_login(client, "pErSoN@eXaMpLe.CoM", PASSWORD))


async def test_an_unknown_email_is_limited_the_same_way(running: Running, client: httpx.AsyncClient) -> None:
    await make_user(running.idp)
    await fail(client, 5, "nobody@example.com")
    unknown = await submit_login(client, "nobody@example.com", PASSWORD)
    await fail(client, 5, EMAIL)
    known = await submit_login(client, EMAIL, PASSWORD)

    assert_locked(unknown)
    assert_locked(known)
    assert unknown.headers["retry-after"] == known.headers["retry-after"]
    assert unknown.text.replace("nobody", "person") == known.text.replace("nobody", "person")


async def test_the_address_limit_spans_many_emails(
    start_app: StartApp, make_settings: Callable[..., Settings], clock: FrozenClock
) -> None:
    running = await start_app(make_settings(login_max_failures_per_address=8))
    await make_user(running.idp)
    async with running.client() as client:
        for i in range(8):
            await fail(client, 1, f"guess{i}@example.com")
        # The account itself has no failures, but the address is spent.
        assert_locked(await submit_login(client, EMAIL, PASSWORD))
        assert_locked(await submit_login(client, "fresh@example.com", WRONG))
    async with running.client(ip="203.0.113.50") as elsewhere:
        assert (await submit_login(elsewhere, EMAIL, PASSWORD)).status_code == 303

    clock.advance(running.idp.settings.login_failure_window_seconds)
    async with running.client() as client:
        assert (await submit_login(client, EMAIL, PASSWORD)).status_code == 303


async def test_a_success_does_not_reset_the_address_counter(
    start_app: StartApp, make_settings: Callable[..., Settings]
) -> None:
    running = await start_app(make_settings(login_max_failures_per_address=6))
    await make_user(running.idp)
    async with running.client() as client:
        for i in range(5):
            await fail(client, 1, f"guess{i}@example.com")
        # An attacker with one valid account must not be able to wipe the address counter.
        assert (await submit_login(client, EMAIL, PASSWORD)).status_code == 303
        client.cookies.clear()
        await fail(client, 1, "guess5@example.com")
        assert_locked(await submit_login(client, "guess6@example.com", WRONG))


async def test_two_replicas_share_the_counts(start_app: StartApp, settings: Settings) -> None:
    first = await start_app(settings)
    second = await start_app(settings)
    await make_user(first.idp)
    async with first.client() as a, second.client() as b:
        await fail(a, 3)
        await fail(b, 2)
        assert_locked(await submit_login(a, EMAIL, PASSWORD))
        assert_locked(await submit_login(b, EMAIL, PASSWORD))
    assert (await audit_types(second)).count("login.locked") == 2


async def test_two_replicas_share_the_address_count(
    start_app: StartApp, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(login_max_failures_per_address=4)
    first = await start_app(settings)
    second = await start_app(settings)
    await make_user(first.idp)
    async with first.client() as a, second.client() as b:
        await fail(a, 1, "one@example.com")
        await fail(b, 1, "two@example.com")
        await fail(a, 1, "three@example.com")
        await fail(b, 1, "four@example.com")
        assert_locked(await submit_login(a, EMAIL, PASSWORD))
        assert_locked(await submit_login(b, EMAIL, PASSWORD))


async def test_a_burst_of_concurrent_guesses_cannot_exceed_the_limit(start_app: StartApp, settings: Settings) -> None:
    first = await start_app(settings)
    second = await start_app(settings)
    await make_user(first.idp)
    clients = [first.client(ip=f"203.0.113.{i}") if i % 2 else second.client(ip=f"203.0.113.{i}") for i in range(20)]
    try:
        tokens = []
        for client in clients:
            page = await client.get("/login")
            tokens.append(page.text.split('name="csrf_token" value="')[1].split('"')[0])
        responses = await asyncio.gather(
            *(
                client.post("/login", data={"username": EMAIL, "password": WRONG, "csrf_token": token})
                for client, token in zip(clients, tokens, strict=True)
            )
        )
    finally:
        for client in clients:
            await client.aclose()
    statuses = sorted(response.status_code for response in responses)
    # Only as many passwords are actually tried as the limit allows; the rest are refused unverified.
    assert statuses.count(400) <= settings.login_max_failures_per_account, statuses
    assert set(statuses) <= {400, 429}
    assert (await audit_types(first)).count("login.failure") <= settings.login_max_failures_per_account
