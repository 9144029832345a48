"""SQLite: a write transaction takes the write lock at BEGIN (BEGIN IMMEDIATE), so two transactions that each read
and then write wait for each other instead of one failing with "database is locked" (SQLITE_BUSY) when it tries
to upgrade its read lock; and `read()` runs without a transaction."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import event, text

from idp.store.db import Database


async def test_read_then_write_transactions_wait_for_each_other(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'locks.db'}"
    setup = Database(url)
    first, second = Database(url), Database(url)  # two processes' worth of connections
    try:
        async with setup.transaction() as session:
            await session.execute(text("CREATE TABLE counter (n INTEGER NOT NULL)"))

        async def read_then_write(db: Database) -> None:
            async with db.transaction() as session:
                seen = (await session.execute(text("SELECT count(*) FROM counter"))).scalar_one()
                await asyncio.sleep(0.05)  # the other transaction starts meanwhile
                await session.execute(text("INSERT INTO counter (n) VALUES (:n)"), {"n": seen})

        await asyncio.gather(read_then_write(first), read_then_write(second))

        values = await setup.read(lambda session: session.execute(text("SELECT n FROM counter ORDER BY n")))
        # Serialised: the second saw the first's row.
        assert [row[0] for row in values] == [0, 1]
    finally:
        for db in (setup, first, second):
            await db.dispose()


async def test_reads_and_the_ping_send_no_begin(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'reads.db'}")
    sent: list[str] = []

    event.listen(db.engine.sync_engine, "before_cursor_execute", lambda *args: sent.append(args[2]))
    try:
        await db.read(lambda session: session.execute(text("SELECT 1")))
        await db.ping()
        assert sent == ["SELECT 1", "SELECT 1"]
        async with db.transaction() as session:
            await session.execute(text("SELECT 2"))
        assert sent[2:] == ["BEGIN IMMEDIATE", "SELECT 2"]
    finally:
        await db.dispose()
