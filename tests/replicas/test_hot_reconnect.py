"""Without a pre-ping, a replica whose pooled PostgreSQL connections the server cut (a restart, an idle timeout)
still answers its next requests: dead connections are dropped at checkout, and a read that meets one is retried."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from idp.config import Settings
from tests.conftest import Running
from tests.support.oidc import make_client

StartApp = Callable[[Settings], Coroutine[Any, Any, Running]]


async def cut_idle_connections(replica: Running) -> int:
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
