"""The hot statements' own connection pool on a real PostgreSQL: bounded, handing a returned connection to the
next waiter, never losing a connection to a cancelled waiter or an interrupted statement, replacing connections the
server closed, and closing the ones left idle."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from idp.store.hot import ConnectionPool


@pytest.fixture
async def dsn(postgres_database: str) -> str:
    return postgres_database.replace("+asyncpg", "")


def pool_of(dsn: str, size: int, **options: float) -> ConnectionPool:
    return ConnectionPool(size, {"dsn": dsn}, **options)


async def backend_pid(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT pg_backend_pid()"))


async def test_at_most_size_connections_and_a_returned_one_goes_to_the_waiter(dsn: str) -> None:
    pool = pool_of(dsn, 2)
    try:
        first, second = await pool.acquire(), await pool.acquire()
        assert pool.counts() == (2, 0, 2)
        third = asyncio.ensure_future(pool.acquire())
        await asyncio.sleep(0.05)
        assert not third.done()
        pool.release(first)
        assert await asyncio.wait_for(third, 5) is first
        assert pool.counts() == (2, 0, 2)
        pool.release(second)
        pool.release(first)
        assert pool.counts() == (0, 2, 2)
        # The most recently returned goes out first, so the other can age out.
        assert await pool.acquire() is first
        pool.release(first)
    finally:
        await pool.close()
    assert pool.counts() == (0, 0, 2)


async def test_a_cancelled_waiter_does_not_keep_the_connection(dsn: str) -> None:
    pool = pool_of(dsn, 1)
    try:
        held = await pool.acquire()
        cancelled = asyncio.ensure_future(pool.acquire())
        patient = asyncio.ensure_future(pool.acquire())
        await asyncio.sleep(0.05)
        pool.release(held)  # handed to `cancelled`, which is cancelled before it runs
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        conn = await asyncio.wait_for(patient, 5)
        assert conn is held
        assert await conn.fetchval("SELECT 1") == 1
        pool.release(conn)
        assert pool.counts() == (0, 1, 1)
    finally:
        await pool.close()


async def test_a_connection_interrupted_mid_statement_is_dropped_and_its_slot_reused(dsn: str) -> None:
    pool = pool_of(dsn, 1)
    try:
        conn = await pool.acquire()
        pid = await backend_pid(conn)
        waiter = asyncio.ensure_future(pool.acquire())
        await asyncio.sleep(0.05)
        pool.release(conn, reusable=False)
        fresh = await asyncio.wait_for(waiter, 5)
        assert fresh is not conn
        assert conn.is_closed()
        assert await backend_pid(fresh) != pid
        pool.release(fresh)
        assert pool.counts() == (0, 1, 1)
    finally:
        await pool.close()


async def test_a_connection_the_server_closed_while_idle_is_replaced_without_an_error(dsn: str) -> None:
    pool = pool_of(dsn, 1)
    try:
        conn = await pool.acquire()
        pid = await backend_pid(conn)
        pool.release(conn)
        outside = await asyncpg.connect(dsn)
        try:
            assert await outside.fetchval("SELECT pg_terminate_backend($1)", pid)
        finally:
            await outside.close()
        for _ in range(50):  # the event loop sees the socket close
            if conn.is_closed():
                break
            await asyncio.sleep(0.02)
        again = await pool.acquire()
        assert again is not conn
        assert await backend_pid(again) != pid
        pool.release(again)
        assert pool.counts() == (0, 1, 1)
    finally:
        await pool.close()


async def test_connections_idle_past_the_limit_are_closed(dsn: str) -> None:
    pool = pool_of(dsn, 2, idle_seconds=0.2)
    try:
        first, second = await pool.acquire(), await pool.acquire()
        pool.release(first)
        pool.release(second)
        assert pool.counts() == (0, 2, 2)
        for _ in range(100):
            if pool.counts() == (0, 0, 2):
                break
            await asyncio.sleep(0.05)
        assert pool.counts() == (0, 0, 2)
        await asyncio.sleep(0.1)
        assert first.is_closed()
        assert second.is_closed()
        conn = await pool.acquire()  # opens a new one when needed again
        assert await conn.fetchval("SELECT 1") == 1
        pool.release(conn)
    finally:
        await pool.close()


async def test_a_failed_connect_frees_its_slot(dsn: str) -> None:
    pool = ConnectionPool(1, {"dsn": dsn.rsplit("/", 1)[0] + "/no_such_database_here"})
    with pytest.raises(asyncpg.InvalidCatalogNameError):
        await pool.acquire()
    assert pool.counts() == (0, 0, 1)
    await pool.close()
