"""Clients are cached in each process: a change made through one app (replica) takes effect there at once and on
another app on the same database within a second (its cache reads the change counter at most once a second)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

import httpx

from idp.config import Settings
from tests.conftest import Running
from tests.support.oidc import make_client

StartApp = Callable[[Settings], Coroutine[Any, Any, Running]]
WITHIN = 1.0  # seconds: the cache's check interval
CC = {"grant_type": "client_credentials"}


async def status_within(app: Running, basic: tuple[str, str], want: int, seconds: float) -> float:
    """Seconds until a client_credentials request on `app` answers `want` (polled every 50 ms, bounded)."""
    started = time.monotonic()
    async with app.client() as http:
        while (response := await http.post("/token", data=CC, auth=basic)).status_code != want:
            assert time.monotonic() - started < seconds, response.text
            await asyncio.sleep(0.05)
    return time.monotonic() - started


async def two_replicas(start_app: StartApp, settings: Settings) -> tuple[Running, Running]:
    return await start_app(settings), await start_app(settings)


async def test_a_rotated_secret_stops_working_at_once_here_and_within_a_second_there(
    start_app: StartApp, settings: Settings
) -> None:
    a, b = await two_replicas(start_app, settings)
    service = await make_client(a.idp, "Back end", redirect_uris=[], grant_types=["client_credentials"])
    for replica in (a, b):  # both have the client cached
        async with replica.client() as http:
            assert (await http.post("/token", data=CC, auth=service.basic)).status_code == 200

    new_secret = await a.idp.clients.rotate_secret(service.client_id, actor="test", client_ip="")

    async with a.client() as http:
        assert (await http.post("/token", data=CC, auth=service.basic)).status_code == 401
        assert (await http.post("/token", data=CC, auth=(service.client_id, new_secret))).status_code == 200
    assert await status_within(b, service.basic, 401, WITHIN + 0.5) <= WITHIN + 0.5
    async with b.client() as http:
        assert (await http.post("/token", data=CC, auth=(service.client_id, new_secret))).status_code == 200


async def test_a_deleted_client_stops_working_everywhere(start_app: StartApp, settings: Settings) -> None:
    a, b = await two_replicas(start_app, settings)
    service = await make_client(a.idp, "Back end", redirect_uris=[], grant_types=["client_credentials"])
    async with b.client() as http:
        assert (await http.post("/token", data=CC, auth=service.basic)).status_code == 200

    await a.idp.clients.delete(service.client_id, actor="test", client_ip="")

    async with a.client() as http:
        assert (await http.post("/token", data=CC, auth=service.basic)).status_code == 401
    await status_within(b, service.basic, 401, WITHIN + 0.5)


async def test_a_changed_registration_reaches_the_other_replica(start_app: StartApp, settings: Settings) -> None:
    a, b = await two_replicas(start_app, settings)
    service = await make_client(a.idp, "Back end", redirect_uris=[], grant_types=["client_credentials"])
    async with b.client() as http:
        assert (await http.post("/token", data=CC, auth=service.basic)).status_code == 200

    await a.idp.clients.update(
        service.client_id, {"grant_types": ["authorization_code"], "redirect_uris": ["https://rp.example/cb"]},
        actor="test", client_ip="",
    )  # fmt: skip

    await status_within(b, service.basic, 400, WITHIN + 0.5)  # unauthorized_client


async def test_the_cache_does_not_keep_what_a_lookup_read_before_a_change(running: Running) -> None:
    service = await make_client(running.idp, "Back end", redirect_uris=[], grant_types=["client_credentials"])
    cache = running.idp.clients.cache
    cache.clear()
    generation = cache.generation
    before = await running.idp.clients.find(service.client_id)
    assert before is not None
    cache.entries.clear()
    cache.clear()  # a change was seen while that lookup was under way

    cache.store(before, generation)

    assert service.client_id not in cache.entries


async def test_unknown_clients_are_not_cached(running: Running, client: httpx.AsyncClient) -> None:
    response = await client.post("/token", data=CC, auth=("no-such-client", "x"))
    assert response.status_code == 401
    assert "no-such-client" not in running.idp.clients.cache.entries


async def test_lookups_that_find_the_cache_due_together_read_the_counter_once(running: Running) -> None:
    service = await make_client(running.idp, "Back end", redirect_uris=[], grant_types=["client_credentials"])
    clients = running.idp.clients
    assert await clients.find(service.client_id) is not None  # cached
    clients.cache.checked_at = -float("inf")  # the check is due
    db = running.idp.db
    before = db.statements

    found = await asyncio.gather(*(clients.find(service.client_id) for _ in range(32)))

    assert all(client is not None and client.client_id == service.client_id for client in found)
    assert db.statements - before == 1  # one read of the change counter, not one per waiting lookup
    assert not clients.cache.due()
