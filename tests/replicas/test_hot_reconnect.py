"""Without a pre-ping, a replica whose pooled PostgreSQL connections the server cut (a restart, an idle timeout)
still answers its next requests: dead connections are dropped at checkout, and a read that meets one is retried."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from idp.auth.tokens import sha256_hex
from idp.config import Settings
from tests.conftest import Running, run_sync
from tests.support.oidc import make_client

StartApp = Callable[[Settings], Coroutine[Any, Any, Running]]


async def cut_idle_connections(replica: Running, *, noticed: bool = True) -> int:
    """Terminate every idle connection to the replica's database, from a connection outside its pools."""
    engine = create_async_engine(replica.idp.db.url)
    try:
        async with engine.connect() as conn:
            cut = await conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'idle'"
                )
            )
            count = int(cut.scalar_one())
    finally:
        await engine.dispose()
    if noticed:
        await asyncio.sleep(0.2)  # the replica's event loop sees the sockets close
    return count


async def test_requests_after_the_server_cut_the_pooled_connections_succeed(
    start_app: StartApp, pg_settings: Callable[..., Settings]
) -> None:
    replica = await start_app(pg_settings(database_pool_size=4))
    service = await make_client(replica.idp, "Back end", redirect_uris=[], grant_types=["client_credentials"])
    async with replica.client() as http:
        tokens = [
            (await http.post("/token", data={"grant_type": "client_credentials"}, auth=service.basic)).json()
            for _ in range(3)
        ]
        assert await cut_idle_connections(replica) >= 1

        for token in tokens:
            answer = await http.post("/introspect", data={"token": token["access_token"]}, auth=service.basic)
            assert answer.status_code == 200, answer.text
            assert answer.json()["active"] is True
        replica.idp.clients.cache.clear()
        assert await cut_idle_connections(replica) >= 1
        again = await http.post("/token", data={"grant_type": "client_credentials"}, auth=service.basic)
        assert again.status_code == 200, again.text


async def test_a_hot_read_on_a_connection_cut_unnoticed_is_retried(
    start_app: StartApp, pg_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    replica = await start_app(pg_settings(database_pool_size=4))
    db = replica.idp.db
    service = await make_client(replica.idp, "Back end", redirect_uris=[], grant_types=["client_credentials"])
    async with replica.client() as http:
        token = (await http.post("/token", data={"grant_type": "client_credentials"}, auth=service.basic)).json()
    token_hash = sha256_hex(token["access_token"])
    assert await db.hot.find_token_with_user(token_hash) is not None

    # Cut from another thread while this event loop is blocked, so the pooled connection still looks open when
    # it is taken: the statement itself meets the closed connection.
    assert run_sync(lambda: cut_idle_connections(replica, noticed=False)) >= 1
    time.sleep(0.2)  # noqa: ASYNC251 - blocking on purpose: the server closes the socket, this loop must not see it
    caplog.set_level(logging.INFO, logger="idp.store.hot")

    found = await db.hot.find_token_with_user(token_hash)

    assert found is not None
    assert "reading again on another" in caplog.text


async def test_a_statement_cancelled_midway_leaves_no_busy_connection_in_the_pool(
    start_app: StartApp, pg_settings: Callable[..., Settings]
) -> None:
    replica = await start_app(pg_settings(database_pool_size=2))
    hot = replica.idp.db.hot
    slow = asyncio.ensure_future(hot._run(lambda conn: conn.fetchval("SELECT pg_sleep(30)"), retry=False))  # type: ignore[attr-defined]
    await asyncio.sleep(0.3)
    assert hot.pool_counts()[0] == 1  # type: ignore[attr-defined]
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await slow

    # The interrupted connection is dropped, not handed to the next statement while its query may still run.
    assert hot.pool_counts()[:2] == (0, 0)  # type: ignore[attr-defined]
    assert await asyncio.wait_for(hot.find_token_with_user(sha256_hex("none")), 5) is None
