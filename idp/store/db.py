"""Engine and session factory for SQLite (aiosqlite) and PostgreSQL (asyncpg), with a statement counter.

Two ways in: `transaction()` for work that must commit together, and `read()` for read-only work, which runs
without BEGIN/COMMIT (PostgreSQL autocommit; SQLite's implicit per-statement transaction), one round trip per
statement. There is no pre-ping on checkout: a pooled PostgreSQL connection the server already closed is
dropped at checkout for free (asyncpg saw the socket close), and a read that still meets a dead connection is
retried once on a fresh one. Returning a connection to the pool sends nothing either: SQLAlchemy's reset is a
rollback, which the asyncpg adapter skips when no transaction is open (every path commits or rolls back first).

SQLite write transactions start with BEGIN IMMEDIATE (SQLAlchemy's documented aiosqlite recipe: the driver's own
BEGIN is switched off and a "begin" event sends ours), so a transaction that reads and then writes holds the write
lock from its start and cannot fail with SQLITE_BUSY on upgrading its lock in WAL mode.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import event, exc, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from idp.store.hot import HotStore, hot_store

T = TypeVar("T")
# Execution option that marks the read-only engine: its connections get no BEGIN on SQLite.
_READ_ONLY = "idp_read_only"
_SQLITE_BEGIN = "BEGIN IMMEDIATE"


class Database:
    """One engine per process; `transaction()` commits together or not at all, `read()` reads without one."""

    def __init__(self, url: str, *, pool_size: int = 10, hot: bool = True, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        # hide_parameters: a failed statement's error (and any echo) must not carry bound values such as
        # password hashes, token hashes or sealed secrets into a log line.
        options: dict[str, Any] = {"echo": echo, "hide_parameters": True}
        # PostgreSQL: the hot statements' asyncpg pool takes half of pool_size, SQLAlchemy's pool the rest (a
        # Database that serves no hot statement, such as the outbox worker's, keeps it all).
        hot_size = max(1, pool_size // 2)
        if not self.is_sqlite:
            if hot:
                pool_size = max(1, pool_size - hot_size)
            # A fixed pool: connections open as needed up to pool_size and stay open. SQLAlchemy closes an overflow
            # connection as soon as it is returned, so under steady load above pool_size every few requests paid
            # for a new PostgreSQL backend (fork, authentication, asyncpg's type set-up): most of the CPU it used.
            options.update(pool_size=pool_size, max_overflow=0, pool_recycle=1800)
        self.engine: AsyncEngine = create_async_engine(url, **options)
        # SQLite: the driver's isolation stays off, so each statement outside BEGIN is its own transaction.
        self._read_options: dict[str, Any] = {_READ_ONLY: True} if self.is_sqlite else {"isolation_level": "AUTOCOMMIT"}
        reader = self.engine.execution_options(**self._read_options)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self._readers = async_sessionmaker(reader, expire_on_commit=False, autoflush=False)
        # Counts statements sent, so tests can hold request handlers to a fixed number of round trips.
        self.statements = 0
        sync_engine = self.engine.sync_engine
        event.listen(sync_engine, "before_cursor_execute", self._count)
        if self.is_sqlite:
            event.listen(sync_engine, "connect", _sqlite_connect)
            event.listen(sync_engine, "begin", _sqlite_begin)
        else:
            event.listen(sync_engine.pool, "checkout", _drop_closed)
        # The hot path's statements: asyncpg directly on PostgreSQL, SQLAlchemy on SQLite.
        self.hot: HotStore = hot_store(self, hot_size if hot else 0)

    def _count(self, _conn: object, _cursor: object, statement: str, *_: object) -> None:
        # SQLite's BEGIN IMMEDIATE is the counterpart of asyncpg's BEGIN, which is not counted either.
        if statement != _SQLITE_BEGIN:
            self.statements += 1

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on any exception."""
        async with self.sessions() as session, session.begin():
            yield session

    async def read(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run read-only `work` without a transaction; once more on a fresh connection if the first was dead.

        Each statement sees its own snapshot: only for work whose statements need no common one (usually one)."""
        try:
            return await self._read(work)
        except exc.DBAPIError as error:
            if not error.connection_invalidated:
                raise
        return await self._read(work)

    async def write_one(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run `work` that sends a single writing statement, without BEGIN/COMMIT around it (a statement is atomic by
        itself). Not retried: a statement whose connection died may have been applied."""
        return await self._read(work)

    async def _read(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        async with self._readers() as session:
            return await work(session)

    async def ping(self) -> None:
        """Raise if the database does not answer; a pooled connection found dead is replaced once, as for reads
        (right after a failover the pool may hand one out before asyncpg has seen its socket close)."""
        try:
            await self._ping()
        except exc.DBAPIError as error:
            if not error.connection_invalidated:
                raise
            await self._ping()

    async def _ping(self) -> None:
        async with self.engine.connect() as conn:
            # Outside a transaction: a readiness probe must not queue for SQLite's write lock.
            await conn.execution_options(**self._read_options)
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.hot.close()
        await self.engine.dispose()


def _drop_closed(_dbapi_connection: Any, record: Any, _proxy: object) -> None:
    """A pooled asyncpg connection whose socket the server closed is replaced at checkout, with no round trip."""
    driver = record.driver_connection
    if driver is not None and driver.is_closed():
        raise exc.DisconnectionError("the pooled connection was closed by the server")


def _sqlite_connect(dbapi_connection: Any, _record: object) -> None:
    # No BEGIN from the driver: _sqlite_begin sends BEGIN IMMEDIATE for transactions, reads run without one.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets readers proceed during a write; busy_timeout makes concurrent writers wait instead of failing.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    if not conn.get_execution_options().get(_READ_ONLY):
        conn.exec_driver_sql(_SQLITE_BEGIN)
