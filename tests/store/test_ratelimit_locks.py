"""Taking back reservations and clearing an account's failures are one DELETE whose subquery locks the rows in id
order, on a real PostgreSQL: a sign-in clearing the account waits behind another's reservation but never holds a
row that one still needs, whatever order the scan meets the rows in (here the index on (key, at) meets them
newest id first)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from idp.store import ratelimit as store
from idp.store.db import Database
from idp.store.models import RateLimitHit

Clear = Callable[[AsyncSession, str], Awaitable[int]]


@pytest.fixture
async def db(postgres_database: str) -> AsyncIterator[Database]:
    database = Database(postgres_database, hot=False)
    yield database
    await database.dispose()


async def hits_in_reverse_time(db: Database, key: str) -> list[int]:
    """Four hits of `key` whose times run backwards: ascending id is descending `at`."""
    start = datetime(2026, 12, 1, tzinfo=UTC)
    ids = []
    for step in range(4):
        async with db.transaction() as session:
            ids += await store.add_hits(session, [key], start - timedelta(seconds=step))
    return ids


async def clear_in_id_order(session: AsyncSession, key: str) -> int:
    return await store.clear_hits(session, [key])


async def clear_in_scan_order(session: AsyncSession, key: str) -> int:
    result = await session.execute(delete(RateLimitHit).where(RateLimitHit.key == key))
    return result.rowcount  # type: ignore[attr-defined, no-any-return]


async def race(db: Database, clear: Clear) -> int:
    """A takes back its reservation (the oldest id), B clears the key by the index, A takes back the newest id."""
    key = "test:lock:" + uuid.uuid4().hex
    first, _, _, last = await hits_in_reverse_time(db, key)
    async with db.sessions() as a, a.begin():
        await a.execute(text("SET LOCAL deadlock_timeout = '200ms'"))
        assert await store.delete_hits(a, [first]) == 1

        async def other() -> int:
            async with db.sessions() as b, b.begin():
                # The index on (key, at) walks the rows from the newest id to the oldest.
                await b.execute(text("SET LOCAL enable_seqscan = off"))
                await b.execute(text("SET LOCAL enable_bitmapscan = off"))
                await b.execute(text("SET LOCAL deadlock_timeout = '200ms'"))
                return await clear(b, key)

        b_task = asyncio.ensure_future(other())
        await asyncio.sleep(0.3)
        assert not b_task.done()  # waits for A's first row
        try:
            assert await asyncio.wait_for(store.delete_hits(a, [last]), 5) == 1
        except BaseException:
            b_task.cancel()
            raise
    return await asyncio.wait_for(b_task, 5)


async def test_clearing_a_key_waits_behind_a_reservation_and_never_deadlocks(db: Database) -> None:
    # B locked nothing while it waited for the oldest row, so A took the newest at once; B then clears the two left.
    assert await race(db, clear_in_id_order) == 2


async def test_the_same_race_deadlocks_a_delete_that_locks_in_scan_order(db: Database) -> None:
    # The scenario above is one that needs the ordering: an unordered DELETE by key locks the newest row first.
    with pytest.raises(DBAPIError, match="deadlock"):
        await race(db, clear_in_scan_order)
