"""Admin API authentication: bearer admin tokens (hashed, revocable, last use kept) and the admin attempt limit."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from idp.clock import FrozenClock
from idp.config import Settings
from idp.store.models import AdminToken, User
from tests.conftest import Running
from tests.support.admin import API, assert_api_error, audit_events
from tests.support.pages import PASSWORD, make_user, submit_login

StartApp = Callable[[Settings], Coroutine[Any, Any, Running]]

REFUSED_HEADERS = [
    {},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer "},
    {"Authorization": "Bearer idpadm_not-a-token-we-gave-out"},
    {"Authorization": "Bearer not-even-our-prefix"},
    {"Authorization": "Bearer idpadm_" + "x" * 500},
    {"Authorization": "Basic b3BzOnNlY3JldA=="},
    {"Authorization": "Token idpadm_abc"},
]


def assert_unauthorized(response: httpx.Response) -> None:
    body = assert_api_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"
    assert body == {"error": "unauthorized", "error_description": "a valid admin bearer token is required"}


@pytest.mark.parametrize("headers", REFUSED_HEADERS)
async def test_no_or_wrong_token_is_401_with_nothing_else(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await client.get(f"{API}/users", headers=headers)
    assert_unauthorized(response)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/openapi.json"),
        ("GET", "/users"),
        ("GET", "/users/00000000-0000-0000-0000-000000000000"),
        ("DELETE", "/users/00000000-0000-0000-0000-000000000000"),
        ("POST", "/clients"),
        ("GET", "/keys"),
        ("POST", "/keys/rotate"),
        ("GET", "/audit"),
        # Paths and methods the API does not have: the same 401, so a caller cannot even map the API.
        ("GET", "/no/such/path"),
        ("PUT", "/users"),
        ("POST", "/openapi.json"),
    ],
)
async def test_every_path_answers_the_same_401_without_a_token(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await client.request(method, API + path, json={"name": "x"})
    assert_unauthorized(response)


async def test_an_unauthenticated_request_changes_nothing(running: Running, client: httpx.AsyncClient) -> None:
    user = await make_user(running.idp)
    created = await client.post(f"{API}/users", json={"email": "new@example.com"})
    patched = await client.patch(f"{API}/users/{user.id}", json={"disabled": True})
    deleted = await client.delete(f"{API}/users/{user.id}")
    for response in (created, patched, deleted):
        assert_unauthorized(response)
    async with running.idp.db.transaction() as session:
        users = (await session.execute(select(User))).scalars().all()
    assert [(u.email, u.disabled) for u in users] == [("person@example.com", False)]
    assert not [e for e in await audit_events(running) if e.type.startswith("admin.user")]


async def test_a_valid_token_works_and_is_stored_only_as_a_hash(running: Running, client: httpx.AsyncClient) -> None:
    row, token = await running.idp.admin_tokens.create("deploy bot")
    assert token.startswith("idpadm_")

    response = await client.get(f"{API}/users", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 200, response.text
    assert response.json() == {"items": [], "next_cursor": None}
    async with running.idp.db.transaction() as session:
        stored = (await session.execute(select(AdminToken))).scalar_one()
    assert stored.id == row.id
    assert stored.name == "deploy bot"
    assert token not in {stored.id, stored.name, stored.token_hash}
    assert token[len("idpadm_") :] not in stored.token_hash
    # The scheme is case-insensitive (RFC 7235 §2.1).
    lower = await client.get(f"{API}/users", headers={"Authorization": f"bearer {token}"})
    assert lower.status_code == 200


async def test_a_revoked_token_is_401(running: Running, client: httpx.AsyncClient) -> None:
    row, token = await running.idp.admin_tokens.create("laptop")
    _, other = await running.idp.admin_tokens.create("ci")
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get(f"{API}/keys", headers=headers)).status_code == 200

    await running.idp.admin_tokens.revoke(row.id)

    assert_unauthorized(await client.get(f"{API}/keys", headers=headers))
    assert_unauthorized(await client.get(f"{API}/openapi.json", headers=headers))
    # Other tokens live on.
    assert (await client.get(f"{API}/keys", headers={"Authorization": f"Bearer {other}"})).status_code == 200
    revoked = await audit_events(running, "admin.token_revoked")
    assert [(e.actor, e.details) for e in revoked] == [("cli", f'{{"credential": "{row.id}"}}')]


async def test_last_used_at_is_kept_without_writing_on_every_call(
    running: Running, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    _, token = await running.idp.admin_tokens.create("ops")
    headers = {"Authorization": f"Bearer {token}"}

    async def last_used() -> Any:
        async with running.idp.db.transaction() as session:
            return (await session.execute(select(AdminToken.last_used_at))).scalar_one()

    assert await last_used() is None
    first = clock.now()
    assert (await client.get(f"{API}/users", headers=headers)).status_code == 200
    assert await last_used() == first

    clock.advance(30)
    assert (await client.get(f"{API}/users", headers=headers)).status_code == 200
    assert await last_used() == first  # within a minute: no write

    clock.advance(31)
    assert (await client.get(f"{API}/users", headers=headers)).status_code == 200
    assert await last_used() == clock.now()
    # A failed presentation touches nothing.
    clock.advance(120)
    await client.get(f"{API}/users", headers={"Authorization": f"Bearer {token}x"})
    assert await last_used() != clock.now()


async def test_the_admin_rate_limit_refuses_an_address_after_too_many_failures(
    start_app: StartApp, make_settings: Callable[..., Settings], clock: FrozenClock
) -> None:
    running = await start_app(make_settings(admin_max_failures_per_address=3, login_failure_window_seconds=60))
    _, token = await running.idp.admin_tokens.create("ops")
    good = {"Authorization": f"Bearer {token}"}
    await make_user(running.idp)

    async with running.client(ip="203.0.113.9") as attacker:
        for guess in range(3):
            assert_unauthorized(
                await attacker.get(f"{API}/users", headers={"Authorization": f"Bearer idpadm_guess{guess}"})
            )
        refused = await attacker.get(f"{API}/users", headers={"Authorization": "Bearer idpadm_guess4"})
        body = assert_api_error(refused, 429, "rate_limited")
        assert body["error_description"] == "too many failed attempts"
        assert 1 <= int(refused.headers["retry-after"]) <= 61
        # Refused even with a valid token while the address is locked out.
        assert (await attacker.get(f"{API}/users", headers=good)).status_code == 429
        assert (await attacker.get(f"{API}/openapi.json", headers=good)).status_code == 429
        # Its own limit: the same address can still sign in on the pages.
        assert (await submit_login(attacker, "person@example.com", PASSWORD)).status_code == 303

    async with running.client(ip="203.0.113.10") as colleague:
        assert (await colleague.get(f"{API}/users", headers=good)).status_code == 200

    clock.advance(61)
    async with running.client(ip="203.0.113.9") as attacker:
        assert (await attacker.get(f"{API}/users", headers=good)).status_code == 200


async def test_successful_calls_do_not_count_towards_the_limit(
    start_app: StartApp, make_settings: Callable[..., Settings]
) -> None:
    running = await start_app(make_settings(admin_max_failures_per_address=2))
    _, token = await running.idp.admin_tokens.create("ops")
    async with running.client() as admin:
        for _ in range(5):
            response = await admin.get(f"{API}/keys", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200


async def test_unknown_paths_and_methods_are_json_errors_for_a_valid_token(
    running: Running, client: httpx.AsyncClient
) -> None:
    _, token = await running.idp.admin_tokens.create("ops")
    headers = {"Authorization": f"Bearer {token}"}
    assert_api_error(await client.get(f"{API}/no/such/path", headers=headers), 404, "not_found")
    wrong = await client.put(f"{API}/users", headers=headers, json={})
    assert_api_error(wrong, 405, "method_not_allowed")
    assert wrong.headers["allow"] == "GET, POST"
    assert_api_error(await client.delete(f"{API}/openapi.json", headers=headers), 405, "method_not_allowed")
    doc = await client.get(f"{API}/openapi.json", headers=headers)
    assert doc.status_code == 200
    assert doc.json()["components"]["securitySchemes"] == {"bearer": {"type": "http", "scheme": "bearer"}}


def test_the_token_list_has_no_token_field() -> None:
    """What `idp admin-tokens list` prints; the audit log is searched whole in test_no_secrets.py."""
    from idp.services.admin_tokens import describe

    row = AdminToken(id="i", name="n", token_hash="h" * 64, created_at=FrozenClock().now())
    assert set(describe(row)) == {"id", "name", "created_at", "last_used_at", "revoked_at"}
