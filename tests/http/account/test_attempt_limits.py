"""Attempt limits that no stranger can turn against a person (INTERFACE §4, issue #10 items 5, 21, 23, 24):
a device cookie counts a known browser apart, enrollment codes have their own counter, operators unlock,
IPv6 counts per /64, admin and client authentication failures are limited and audited."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
from sqlalchemy import select

from idp.clock import FrozenClock
from idp.config import Settings
from idp.services.ratelimit import address_key
from idp.store.models import KnownDevice
from tests.conftest import Running
from tests.support.admin import API, admin_client, audit_events
from tests.support.mfa import enroll, totp_code
from tests.support.pages import PASSWORD, csrf_token, make_user, submit_login

StartApp = Callable[[Settings], Coroutine[Any, Any, Running]]
EMAIL = "person@example.com"
WRONG = "not the right password"


async def fail(client: httpx.AsyncClient, times: int, email: str = EMAIL) -> None:
    for _ in range(times):
        assert (await submit_login(client, email, WRONG)).status_code == 400


async def signed_in_once(running: Running, ip: str = "203.0.113.1") -> httpx.AsyncClient:
    """The person's own browser: signed in once (so it holds a device cookie), then signed out."""
    browser = running.client(ip=ip)
    assert (await submit_login(browser, EMAIL, PASSWORD)).status_code == 303
    assert browser.cookies.get("idp_device")
    browser.cookies.delete("idp_session")
    return browser


# -- item 23: a stranger cannot lock a person out ------------------------------------------------------------


async def test_a_stranger_locks_only_strangers_out(running: Running) -> None:
    await make_user(running.idp)
    mine = await signed_in_once(running)
    async with running.client(ip="192.0.2.66") as stranger:
        await fail(stranger, 5)
        assert (await submit_login(stranger, EMAIL, PASSWORD)).status_code == 429
    # The person's browser, even from the stranger's address, is counted apart.
    async with running.client(ip="192.0.2.66") as same_address:
        same_address.cookies.set("idp_device", mine.cookies["idp_device"])
        assert (await submit_login(same_address, EMAIL, PASSWORD)).status_code == 303
    assert (await submit_login(mine, EMAIL, PASSWORD)).status_code == 303
    await mine.aclose()


async def test_a_known_browser_has_its_own_limit(running: Running) -> None:
    await make_user(running.idp)
    mine = await signed_in_once(running)
    await fail(mine, 5)
    assert (await submit_login(mine, EMAIL, PASSWORD)).status_code == 429
    async with running.client(ip="192.0.2.67") as elsewhere:  # the person's other browser is not locked out
        assert (await submit_login(elsewhere, EMAIL, PASSWORD)).status_code == 303
    await mine.aclose()


async def test_a_forged_or_foreign_device_cookie_counts_as_a_stranger(running: Running) -> None:
    user = await make_user(running.idp)
    await make_user(running.idp, "other@example.com")
    async with running.client() as others:
        assert (await submit_login(others, "other@example.com", PASSWORD)).status_code == 303
        foreign = others.cookies["idp_device"]  # known, but to another account
    for device in ("x" * 43, foreign):
        async with running.client(ip="192.0.2.68") as stranger:
            await stranger.get("/login")
            stranger.cookies.set("idp_device", device)
            await fail(stranger, 5)
        async with running.client(ip="192.0.2.69") as anyone:
            assert (await submit_login(anyone, EMAIL, PASSWORD)).status_code == 429
        await running.idp.login.unlock(user.id, actor="test")


async def test_the_device_cookie_is_long_lived_httponly_lax_and_stores_only_a_keyed_hash(running: Running) -> None:
    user = await make_user(running.idp)
    async with running.client() as browser:
        response = await submit_login(browser, EMAIL, PASSWORD)
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith("idp_device="))
    attributes = [part.strip().lower() for part in cookie.split(";")]
    assert {"httponly", "samesite=lax", "path=/"} <= set(attributes)
    assert any(a.startswith("max-age=") and int(a.split("=")[1]) > 300 * 24 * 3600 for a in attributes)
    device = cookie.split(";")[0].split("=", 1)[1]
    async with running.idp.db.transaction() as session:
        rows = (await session.execute(select(KnownDevice))).scalars().all()
    assert [row.user_id for row in rows] == [user.id]
    assert device not in rows[0].key_hash


async def test_the_device_cookie_is_secure_and_host_bound_over_https(
    start_app: StartApp, make_settings: Callable[..., Settings]
) -> None:
    running = await start_app(make_settings(issuer="https://login.example.com"))
    await make_user(running.idp)
    async with running.client(base_url="https://login.example.com") as client:
        response = await submit_login(client, EMAIL, PASSWORD)
    cookie = next(h for h in response.headers.get_list("set-cookie") if "idp_device" in h)
    assert cookie.startswith("__Host-idp_device=")
    assert "secure" in [part.strip().lower() for part in cookie.split(";")]


async def test_a_known_browser_passes_the_second_step_while_strangers_are_locked_out(
    running: Running, clock: FrozenClock
) -> None:
    await make_user(running.idp)
    mine = running.client(ip="203.0.113.1")
    assert (await submit_login(mine, EMAIL, PASSWORD)).status_code == 303
    secret, _ = await enroll(mine, clock.now())
    mine.cookies.delete("idp_session")
    async with running.client(ip="192.0.2.70") as stranger:
        await fail(stranger, 5)
    step = await submit_login(mine, EMAIL, PASSWORD)
    assert step.status_code == 303
    assert step.headers["location"].startswith("/login/verify")
    code = totp_code(secret, clock.now(), offset_steps=1)
    verified = await mine.post(
        "/login/verify", data={"code": code, "csrf_token": await csrf_token(mine, "/login/verify")}
    )
    assert verified.status_code == 303, verified.text
    await mine.aclose()


async def test_wrong_enrollment_codes_do_not_lock_password_sign_in(running: Running, clock: FrozenClock) -> None:
    await make_user(running.idp)
    async with running.client() as browser:
        assert (await submit_login(browser, EMAIL, PASSWORD)).status_code == 303
        statuses = []
        for _ in range(6):
            token = await csrf_token(browser, "/account/security/totp")
            wrong = await browser.post("/account/security/totp", data={"code": "000000", "csrf_token": token})
            statuses.append(wrong.status_code)
        assert statuses == [400] * 5 + [429]
    async with running.client(ip="192.0.2.71") as elsewhere:  # a stranger's browser, even
        assert (await submit_login(elsewhere, EMAIL, PASSWORD)).status_code == 303


# -- item 5: concurrent sign-ins of one account ---------------------------------------------------------------


async def test_32_right_passwords_for_one_account_at_once_all_get_in(start_app: StartApp, settings: Settings) -> None:
    first = await start_app(settings)
    second = await start_app(settings)
    await make_user(first.idp)
    clients = [(first if i % 2 else second).client(ip=f"203.0.113.{i}") for i in range(32)]
    try:
        tokens = [await csrf_token(client) for client in clients]
        responses = await asyncio.gather(
            *(
                client.post("/login", data={"username": EMAIL, "password": PASSWORD, "csrf_token": token})
                for client, token in zip(clients, tokens, strict=True)
            )
        )
    finally:
        for client in clients:
            await client.aclose()
    assert [r.status_code for r in responses] == [303] * 32


async def test_reservations_left_by_a_dead_replica_count_as_failures(running: Running, clock: FrozenClock) -> None:
    await make_user(running.idp)
    limiter = running.idp.limiter
    async with running.idp.db.transaction() as session:
        for _ in range(5):  # five attempts reserved, then their replica died before they turned out
            await limiter.record_failure(session, limiter.login_limits("person@example.com", "192.0.2.99"))
    clock.advance(61)
    async with running.client() as client:
        assert (await submit_login(client, EMAIL, PASSWORD)).status_code == 429


# -- operators unlock ----------------------------------------------------------------------------------------


async def test_unlock_clears_every_limit_of_the_account_and_is_audited(running: Running) -> None:
    user = await make_user(running.idp)
    mine = await signed_in_once(running)
    await fail(mine, 5)
    async with running.client(ip="192.0.2.72") as stranger:
        await fail(stranger, 5)
    admin = await admin_client(running)
    async with admin:
        assert (await admin.post(f"{API}/users/{user.id}/unlock")).status_code == 204
        missing = await admin.post(f"{API}/users/00000000-0000-0000-0000-000000000000/unlock")
        assert missing.status_code == 404
        doc = (await admin.get(f"{API}/openapi.json")).json()
    assert "204" in doc["paths"][f"{API}/users/{{user_id}}/unlock"]["post"]["responses"]
    assert (await submit_login(mine, EMAIL, PASSWORD)).status_code == 303
    async with running.client(ip="192.0.2.72") as stranger:
        assert (await submit_login(stranger, EMAIL, PASSWORD)).status_code == 303
    [event] = await audit_events(running, "admin.user_unlocked")
    assert (event.user_id, event.actor) == (user.id, "admin:ops")
    await mine.aclose()


# -- item 24: IPv6 per /64 -----------------------------------------------------------------------------------


def test_addresses_are_counted_per_ipv4_address_and_per_ipv6_64() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_key("192.0.2.1") != address_key("192.0.2.2")
    assert address_key("not an address") == "not an address"


async def test_the_address_limit_spans_an_ipv6_64(start_app: StartApp, make_settings: Callable[..., Settings]) -> None:
    running = await start_app(make_settings(login_max_failures_per_address=3))
    await make_user(running.idp)
    for i in range(3):
        async with running.client(ip=f"2001:db8:1:2::{i + 1}") as client:
            await fail(client, 1, f"guess{i}@example.com")
    async with running.client(ip="2001:db8:1:2:ffff:ffff:ffff:ffff") as same_64:
        assert (await submit_login(same_64, "guess9@example.com", WRONG)).status_code == 429
    async with running.client(ip="2001:db8:1:3::1") as next_64:
        assert (await submit_login(next_64, EMAIL, PASSWORD)).status_code == 303


# -- item 21: admin and client authentication failures -------------------------------------------------------


async def test_25_parallel_bad_admin_tokens_get_no_more_than_the_limit(
    start_app: StartApp, make_settings: Callable[..., Settings]
) -> None:
    first = await start_app(make_settings(admin_max_failures_per_address=20))
    second = await start_app(make_settings(admin_max_failures_per_address=20))
    async with first.client() as a, second.client() as b:
        responses = await asyncio.gather(
            *(
                (a if i % 2 else b).get(f"{API}/users", headers={"Authorization": f"Bearer idpadm_guess{i}"})
                for i in range(25)
            )
        )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [401] * 20 + [429] * 5, statuses


async def test_admin_authentication_failures_are_audited_without_the_token(running: Running) -> None:
    row, token = await running.idp.admin_tokens.create("old laptop")
    await running.idp.admin_tokens.revoke(row.id)
    async with running.client() as client:
        await client.get(f"{API}/users")
        await client.get(f"{API}/users", headers={"Authorization": "Bearer idpadm_guessed"})
        await client.get(f"{API}/users", headers={"Authorization": f"Bearer {token}"})
    events = await audit_events(running, "admin.auth_failed")
    assert [(e.outcome, e.client_ip) for e in events] == [("failure", "198.51.100.7")] * 3
    assert [e.details for e in events] == [
        '{"credential": "", "reason": "missing"}',
        '{"credential": "", "reason": "unknown"}',
        f'{{"credential": "{row.id}", "reason": "revoked"}}',
    ]
    assert all(token not in e.details and "guessed" not in e.details for e in events)


async def test_client_authentication_failures_are_audited_without_the_secret(running: Running) -> None:
    client_info, secret = await running.idp.clients.create("Jobs", redirect_uris=["https://jobs.example/cb"])
    assert secret is not None
    async with running.client() as client:
        wrong = await client.post(
            "/token", data={"grant_type": "refresh_token", "refresh_token": "r"}, auth=(client_info.client_id, "nope")
        )
        unknown = await client.post("/introspect", data={"token": "t", "client_id": "who", "client_secret": "pssst"})
        revoke = await client.post("/revoke", data={"token": "t"}, auth=(client_info.client_id, secret + "x"))
    assert [r.status_code for r in (wrong, unknown, revoke)] == [401, 401, 401]
    events = await audit_events(running, "client.auth_failed")
    assert len(events) == 3
    assert [e.actor for e in events] == [f"client:{client_info.client_id}", "", f"client:{client_info.client_id}"]
    assert all(e.client_ip == "198.51.100.7" and e.outcome == "failure" for e in events)
    for event in events:
        assert "nope" not in event.details
        assert "pssst" not in event.details
        assert secret not in event.details
