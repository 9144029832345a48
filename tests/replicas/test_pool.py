"""IDP_DATABASE_POOL_SIZE bounds each replica's PostgreSQL connections, so replicas x connections can be kept under
the server's max_connections; requests beyond it wait for a connection, and connections once opened stay open (a
pool that closed its extra connections on return paid for a new PostgreSQL backend every few requests)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url

from idp.config import Settings
from tests.conftest import Running

StartApp = Callable[[Settings], Coroutine[Any, Any, Running]]
POOL_SIZE = 2
CONCURRENT = 24


async def test_the_pool_size_setting_bounds_connections(
    start_app: StartApp, pg_settings: Callable[..., Settings]
) -> None:
    settings = pg_settings(database_pool_size=POOL_SIZE)
    replica = await start_app(settings)
    pool = replica.idp.db.engine.pool
    # SQLAlchemy's pool and the hot statements' asyncpg pool share the setting.
    assert pool.size() + replica.idp.db.hot.pool_counts()[2] == POOL_SIZE  # type: ignore[attr-defined]
    database = make_url(settings.database_url).database
    peak = 0

    async def count_backends() -> None:
        nonlocal peak
        async with replica.idp.db.transaction() as session:
            count = (
                await session.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE datname = :name"), {"name": database}
                )
            ).scalar_one()
        peak = max(peak, int(count))

    async with replica.client() as http:
        answers = await asyncio.gather(*(http.get("/readyz") for _ in range(CONCURRENT)), count_backends())

    assert all(answer.status_code == 200 for answer in answers[:-1])
    assert 1 <= peak <= POOL_SIZE + 2  # the outbox worker's own pool holds up to 2
    assert pool.checkedout() == 0  # type: ignore[attr-defined]
    opened = pool.checkedin()  # type: ignore[attr-defined]
    assert 1 <= opened <= pool.size()  # type: ignore[attr-defined]

    # A second burst reuses what the first opened: no connection was closed on return, none is opened again.
    opened_again = 0

    def count(*_: object) -> None:
        nonlocal opened_again
        opened_again += 1

    event.listen(pool, "connect", count)
    try:
        async with replica.client() as http:
            again = await asyncio.gather(*(http.get("/readyz") for _ in range(CONCURRENT)))
    finally:
        event.remove(pool, "connect", count)
    assert all(answer.status_code == 200 for answer in again)
    assert opened_again == 0
    assert pool.checkedin() == opened  # type: ignore[attr-defined]
