"""A replica that loses its database answers 503 on /readyz (and stays live on /healthz) and recovers by itself
when the database is back, whether the server went away or only its connections were cut."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from idp.config import Settings
from idp.store.migrate import upgrade
from tests.conftest import FAST_ARGON2, PG_SERVER, Running
from tests.support.pages import PASSWORD, make_user, submit_login
from tests.support.tcp_proxy import TcpProxy

StartApp = Callable[[Settings], Coroutine[Any, Any, Running]]
RECOVERY_SECONDS = 10


def settings_for(url: str) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=url,
        issuer="http://testserver",
        secret_key="s" * 40,
        encryption_key="e" * 40,
        **FAST_ARGON2,
    )


async def ready(http: httpx.AsyncClient) -> httpx.Response:
    return await http.get("/readyz")


async def wait_until_ready(http: httpx.AsyncClient) -> float:
    """Seconds until /readyz answers 200 (polled, bounded)."""
    started = time.monotonic()
    while (response := await ready(http)).status_code != 200:
        assert response.status_code == 503, response.text
        assert time.monotonic() - started < RECOVERY_SECONDS, "not ready again after the database came back"
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def signs_in(replica: Running) -> bool:
    async with replica.client() as browser:
        return (await submit_login(browser, "person@example.com", PASSWORD)).status_code == 303


async def test_readiness_follows_the_database_going_away_and_coming_back(
    start_app: StartApp, fresh_pg: Callable[[], str]
) -> None:
    direct = fresh_pg()
    await asyncio.to_thread(upgrade, direct)
    server = make_url(PG_SERVER)
    proxy = TcpProxy(server.host or "127.0.0.1", server.port or 5432)
    await proxy.start()
    through_proxy = make_url(direct).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    replica = await start_app(settings_for(through_proxy))
    await make_user(replica.idp)

    async with replica.client() as http:
        assert (await ready(http)).json() == {"status": "ok", "database": "up"}

        await proxy.stop()
        down = await ready(http)
        assert down.status_code == 503
        assert down.json() == {"status": "unavailable", "database": "down"}
        assert (await http.get("/healthz")).status_code == 200  # alive: no restart for a database outage
        assert (await ready(http)).status_code == 503

        await proxy.start()
        await wait_until_ready(http)
        assert (await ready(http)).json() == {"status": "ok", "database": "up"}
    assert await signs_in(replica)
    await proxy.stop()


async def test_connections_cut_by_the_server_are_replaced(start_app: StartApp, fresh_pg: Callable[[], str]) -> None:
    url = fresh_pg()
    await asyncio.to_thread(upgrade, url)
    replica = await start_app(settings_for(url))
    await make_user(replica.idp)
    assert await signs_in(replica)  # the pool now holds open connections

    # What a failover, a restart or an idle-connection reaper does: every backend of this database is ended.
    admin = create_async_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            ended = (
                await conn.execute(
                    text(
                        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
                        " WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": make_url(url).database},
                )
            ).scalar_one()
    finally:
        await admin.dispose()
    assert ended >= 1

    async with replica.client() as http:
        assert (await ready(http)).status_code == 200
    assert await signs_in(replica)
