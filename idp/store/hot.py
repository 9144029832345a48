"""The hot statements: token lookups for introspection and userinfo, token inserts, refresh rotation, and the writes
that end a correct password step.

Two implementations with one behaviour (tests/store/test_hot.py runs both): `OrmHotStore` through SQLAlchemy (SQLite,
and the reference), and `AsyncpgHotStore` for PostgreSQL, which sends each statement through asyncpg directly:
prepared once per connection (asyncpg's statement cache), no BEGIN/COMMIT around a single statement, none of
SQLAlchemy's per-execution work. It has a pool of its own (`ConnectionPool`, its share of IDP_DATABASE_POOL_SIZE,
see `Database`), because borrowing from SQLAlchemy's pool costs two greenlet switches per statement. Every hot
statement runs outside a transaction and changes no session state (no LISTEN, advisory lock or SET), so a connection
comes back with no reset query. Statements count on the same counter as SQLAlchemy's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import asyncpg

from idp.store import audit as audit_store
from idp.store import grants as orm
from idp.store import mfa as mfa_store
from idp.store import ratelimit as ratelimit_store
from idp.store import sessions as sessions_store

if TYPE_CHECKING:
    from idp.store.db import Database

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TokenView:
    """What introspection and userinfo read of a token row."""

    token_hash: str
    kind: str
    client_id: str
    user_id: str | None
    scope: str
    acr: str
    auth_time: datetime | None
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class UserView:
    """What introspection and userinfo read of the token's person."""

    id: str
    email: str
    name: str
    disabled: bool
    email_verified: bool


TOKEN_COLUMNS = (
    "token_hash",
    "kind",
    "grant_id",
    "client_id",
    "user_id",
    "scope",
    "sid",
    "auth_time",
    "amr",
    "acr",
    "created_at",
    "expires_at",
    "used_at",
    "revoked_at",
    "offline",
)


@dataclass(frozen=True, slots=True)
class Rotation:
    """A refresh to make: the presented token, the scopes asked for (None: all granted), the new tokens' hashes."""

    token_hash: str
    client_id: str
    now: datetime
    idle_before: datetime  # the IdP session counts as live if seen after this
    requested: tuple[str, ...] | None
    access_hash: str
    access_expires_at: datetime
    refresh_hash: str | None  # None: the client has no refresh_token grant, so no new refresh token
    refresh_expires_at: datetime


@dataclass(frozen=True, slots=True)
class Rotated:
    """What a successful rotation issued for: the access token's (possibly narrowed) scope and the subject."""

    grant_id: str
    user_id: str
    sid: str | None  # the grant's session, kept on the new rows
    session_live: bool  # whether that session is still on (the ID token names it only then)
    auth_time: datetime
    amr: str
    acr: str
    scope: str
    # The person's address and whether it was verified: the ID token's `email` claims when the scope has email.
    email: str
    email_verified: bool


@dataclass(frozen=True, slots=True)
class SignInFinish:
    """The writes that end a correct password, together: the session (waiting for the second step if the person has
    a second factor), the known device, the limiter's reservation taken back (and with no second step to come, the
    account's failures cleared, in the same ordered delete), and the audit event."""

    user_id: str
    session: Mapping[str, object]  # login_sessions row: SESSION_COLUMNS, without pending and expires_at
    expires_at: datetime  # signed in
    pending_expires_at: datetime  # waiting for the second step
    device_hash: str  # known_devices key
    now: datetime
    hit_ids: tuple[int, ...]
    clear_keys: tuple[str, ...]  # cleared only when no second step follows
    signed_in_event: Mapping[str, object]  # audit_events row: AUDIT_COLUMNS
    pending_event: Mapping[str, object]


SESSION_COLUMNS = (
    "id_hash", "user_id", "created_at", "last_seen_at", "auth_time", "methods", "sid", "client_ip", "user_agent"
)  # fmt: skip
AUDIT_COLUMNS = ("at", "type", "outcome", "actor", "user_id", "client_ip", "details")


class HotStore(Protocol):
    """The statements of the hot path, one round trip each."""

    async def find_token_with_user(self, token_hash: str) -> tuple[TokenView, UserView | None] | None: ...

    async def insert_tokens(self, rows: Sequence[dict[str, object]]) -> None: ...

    async def rotate_refresh(self, rotation: Rotation) -> Rotated | None:
        """Use a live, unexpired refresh token of the client whose person is enabled and whose requested scopes
        were granted, and insert the new access (and refresh) token, atomically; None, with nothing changed,
        for any other case (the caller then finds out which, and handles reuse)."""
        ...

    async def finish_sign_in(self, finish: SignInFinish) -> bool:
        """Make `finish`'s writes atomically; whether the session waits for a second step."""
        ...

    async def close(self) -> None:
        """Close connections of its own, if it has any."""
        ...


def narrow(granted: str, requested: tuple[str, ...] | None) -> str:
    """The granted scopes that were asked for, in granted order (all of them when none were asked for)."""
    scopes = granted.split()
    return " ".join(scopes if requested is None else [s for s in scopes if s in requested])


def rotated_rows(rotation: Rotation, grant_id: str, client_id: str, user_id: str, scope: str, sid: str | None,
                 auth_time: datetime, amr: str, acr: str) -> list[dict[str, object]]:  # fmt: skip
    """The new token rows of a rotation: the access token narrowed, the refresh token with the grant's scopes."""
    common = {
        "grant_id": grant_id,
        "client_id": client_id,
        "user_id": user_id,
        "sid": sid,
        "auth_time": auth_time,
        "amr": amr,
        "acr": acr,
        "created_at": rotation.now,
        "used_at": None,
        "revoked_at": None,
    }
    rows: list[dict[str, object]] = [
        {
            **common,
            "token_hash": rotation.access_hash,
            "kind": "access",
            "scope": narrow(scope, rotation.requested),
            "expires_at": rotation.access_expires_at,
            "offline": False,
        }
    ]
    if rotation.refresh_hash is not None:
        rows.append(
            {
                **common,
                "token_hash": rotation.refresh_hash,
                "kind": "refresh",
                "scope": scope,
                "expires_at": rotation.refresh_expires_at,
                "offline": "offline_access" in scope.split(),
            }
        )
    return rows


class _Refused(Exception):
    """Rolls back a rotation that found the token but may not go ahead."""


class OrmHotStore:
    """The hot statements through SQLAlchemy (the store functions every other path uses)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def close(self) -> None:
        """Nothing of its own: it uses the engine's pool."""

    async def find_token_with_user(self, token_hash: str) -> tuple[TokenView, UserView | None] | None:
        found = await self._db.read(lambda session: orm.find_token_with_user(session, token_hash))
        if found is None:
            return None
        token, user = found
        token_view = TokenView(
            token.token_hash,
            token.kind,
            token.client_id,
            token.user_id,
            token.scope,
            token.acr,
            token.auth_time,
            token.created_at,
            token.expires_at,
            token.used_at,
            token.revoked_at,
        )
        return token_view, (
            UserView(user.id, user.email, user.name, user.disabled, user.email_verified) if user else None
        )

    async def insert_tokens(self, rows: Sequence[dict[str, object]]) -> None:
        async with self._db.transaction() as session:
            await orm.insert_tokens(session, list(rows))

    async def rotate_refresh(self, rotation: Rotation) -> Rotated | None:
        try:
            async with self._db.transaction() as session:
                used = await orm.use_refresh_token(
                    session, rotation.token_hash, rotation.client_id, rotation.now, rotation.idle_before
                )
                if used is None:
                    return None
                row, user_enabled, session_live, email_claims = used
                asked = rotation.requested
                if (
                    not user_enabled
                    or row.expires_at <= rotation.now
                    or (asked is not None and not set(asked) <= set(row.scope.split()))
                ):
                    raise _Refused
                assert row.user_id is not None
                assert row.auth_time is not None
                rows = rotated_rows(
                    rotation, row.grant_id, row.client_id, row.user_id, row.scope, row.sid, row.auth_time,
                    row.amr, row.acr,
                )  # fmt: skip
                await orm.insert_tokens(session, rows)
        except _Refused:
            return None
        return Rotated(
            row.grant_id,
            row.user_id,
            row.sid,
            session_live,
            row.auth_time,
            row.amr,
            row.acr,
            str(rows[0]["scope"]),
            str(email_claims.get("email", "")),
            bool(email_claims.get("email_verified", False)),
        )

    async def finish_sign_in(self, finish: SignInFinish) -> bool:
        f = finish
        async with self._db.transaction() as session:
            pending = await mfa_store.has_second_factor(session, f.user_id)
            expires_at = f.pending_expires_at if pending else f.expires_at
            await sessions_store.insert_session(session, {**f.session, "pending": pending, "expires_at": expires_at})
            await ratelimit_store.remember_device(session, f.device_hash, f.user_id, f.now)
            await ratelimit_store.delete_hits(session, f.hit_ids, keys=() if pending else f.clear_keys)
            await audit_store.insert_event(session, dict(f.pending_event if pending else f.signed_in_event))
        return pending


_SELECT_GRANT_ROW = (
    "SELECT t.token_hash, t.kind, t.client_id, t.user_id, t.scope, t.acr, t.auth_time, t.created_at, t.expires_at,"
    " t.used_at, t.revoked_at, u.id, u.email, u.name, u.disabled, u.email_verified"
    " FROM tokens t LEFT JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1"
)

# Refresh rotation as one statement: the UPDATE uses the token only if every rule holds (the same rules as
# store.grants.use_refresh_token plus expiry, the person enabled and the requested scopes granted), and the INSERTs
# take their values from its RETURNING, so they happen exactly when it did.
_LIVE_SESSION = (
    "EXISTS (SELECT 1 FROM login_sessions s WHERE s.sid = tokens.sid AND NOT s.pending"
    " AND s.expires_at > $3 AND s.last_seen_at > $4)"
)
_NARROWED = (
    "CASE WHEN $5::text[] IS NULL THEN used.scope ELSE array_to_string(ARRAY("
    "SELECT g FROM unnest(string_to_array(used.scope, ' ')) WITH ORDINALITY AS x(g, n)"
    " WHERE g = ANY($5::text[]) ORDER BY n), ' ') END"
)
_NEW_COLUMNS = (
    "token_hash, kind, grant_id, client_id, user_id, scope, sid, auth_time, amr, acr, created_at, expires_at, offline"
)
_ROTATE_REFRESH = f"""
WITH used AS (
    UPDATE tokens SET used_at = $3
    WHERE token_hash = $1 AND kind = 'refresh' AND client_id = $2 AND used_at IS NULL AND revoked_at IS NULL
      AND expires_at > $3
      AND (offline OR {_LIVE_SESSION})
      AND EXISTS (SELECT 1 FROM users u WHERE u.id = tokens.user_id AND NOT u.disabled)
      AND ($5::text[] IS NULL OR $5::text[] <@ string_to_array(scope, ' '))
    RETURNING grant_id, client_id, user_id, scope, sid, auth_time, amr, acr, {_LIVE_SESSION} AS session_live
), access AS (
    INSERT INTO tokens ({_NEW_COLUMNS})
    SELECT $6, 'access', grant_id, client_id, user_id, {_NARROWED}, sid, auth_time, amr, acr, $3, $7, false
    FROM used
), refresh AS (
    INSERT INTO tokens ({_NEW_COLUMNS})
    SELECT $8, 'refresh', grant_id, client_id, user_id, scope, sid, auth_time, amr, acr, $3, $9,
           'offline_access' = ANY(string_to_array(scope, ' '))
    FROM used WHERE $10::boolean
)
SELECT grant_id, user_id, sid, session_live, auth_time, amr, acr, {_NARROWED} AS scope,
       (SELECT u.email FROM users u WHERE u.id = used.user_id) AS email,
       (SELECT u.email_verified FROM users u WHERE u.id = used.user_id) AS email_verified
FROM used
"""  # noqa: S608 - only constant fragments are interpolated; every value is a bound parameter


def _insert_tokens_statement(count: int) -> str:
    """INSERT of `count` token rows, every value a bound parameter ($1 ...)."""
    width = len(TOKEN_COLUMNS)
    groups = ["(" + ", ".join(f"${row * width + i}" for i in range(1, width + 1)) + ")" for row in range(count)]
    # Only column names from TOKEN_COLUMNS and parameter numbers go into the text; every value is bound.
    return f"INSERT INTO tokens ({', '.join(TOKEN_COLUMNS)}) VALUES {', '.join(groups)}"  # noqa: S608


_INSERT_TOKEN = _insert_tokens_statement(1)
_INSERT_TWO_TOKENS = _insert_tokens_statement(2)


def _finish_sign_in_statement() -> str:
    """One statement for SignInFinish: the second-factor check decides the session's state, its expiry, whether the
    account's failures go and which audit event is written. The reservation's rows are locked in id order in the
    DELETE's subquery, as `store.ratelimit` does, so concurrent sign-ins of one account never deadlock."""
    times = {"created_at", "last_seen_at", "auth_time", "at"}

    def typed(n: int, column: str) -> str:
        return f"${n}::{'timestamptz' if column in times else 'text'}"

    first = 8
    session_values = ", ".join(typed(first + i, c) for i, c in enumerate(SESSION_COLUMNS))
    events = first + len(SESSION_COLUMNS)
    event_values = ", ".join(
        f"CASE WHEN pending THEN {typed(events + len(AUDIT_COLUMNS) + i, c)} ELSE {typed(events + i, c)} END"
        for i, c in enumerate(AUDIT_COLUMNS)
    )
    return f"""
WITH second AS (
    SELECT EXISTS (SELECT 1 FROM totp_credentials WHERE user_id = $1 AND confirmed_at IS NOT NULL)
        OR EXISTS (SELECT 1 FROM passkeys WHERE user_id = $1) AS pending
), new_session AS (
    INSERT INTO login_sessions ({", ".join(SESSION_COLUMNS)}, pending, expires_at)
    SELECT {session_values}, pending, CASE WHEN pending THEN $4::timestamptz ELSE $3::timestamptz END FROM second
), device AS (
    INSERT INTO known_devices (key_hash, user_id, created_at) VALUES ($5, $1, $2)
    ON CONFLICT (key_hash) DO NOTHING
), released AS (
    DELETE FROM ratelimit_hits WHERE id IN (
        SELECT id FROM ratelimit_hits
        WHERE id = ANY($6::bigint[]) OR (key = ANY($7::text[]) AND NOT (SELECT pending FROM second))
        ORDER BY id FOR UPDATE
    )
), event AS (
    INSERT INTO audit_events ({", ".join(AUDIT_COLUMNS)}) SELECT {event_values} FROM second
)
SELECT pending FROM second
"""  # noqa: S608 - only constant column names are interpolated; every value is a bound parameter


_FINISH_SIGN_IN = _finish_sign_in_statement()


class ConnectionPool:
    """At most `size` asyncpg connections, opened on first need, handed out and taken back without a round trip.

    asyncpg's own Pool wraps each checkout in a timeout context and each return in `asyncio.shield` (a task per
    statement), with no reset needed here that is about 8 % of an introspection's CPU. This one keeps idle
    connections on a stack (the most recently used goes out first, so the others age out), hands a returned
    connection straight to the oldest waiter, and drops a connection that died or was interrupted mid-statement.
    """

    def __init__(self, size: int, connect: Mapping[str, Any], *, idle_seconds: float = 300.0) -> None:
        self.size = size
        self._connect = connect
        self._idle_seconds = idle_seconds
        self._idle: list[tuple[asyncpg.Connection, float]] = []
        self._open = 0  # connections open or being opened, in use or idle
        self._waiters: deque[asyncio.Future[asyncpg.Connection | None]] = deque()
        self._sweep: asyncio.TimerHandle | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False

    def counts(self) -> tuple[int, int, int]:
        """(in use, idle, limit)."""
        return self._open - len(self._idle), len(self._idle), self.size

    async def acquire(self) -> asyncpg.Connection:
        """A live connection: an idle one, a new one while under the limit, else the next one given back."""
        while True:
            while self._idle:
                conn, _ = self._idle.pop()
                if not conn.is_closed():
                    return conn
                self._open -= 1  # the server closed it while idle: no round trip spent finding out
            if self._open < self.size:
                self._open += 1
                try:
                    return await asyncpg.connect(**self._connect)
                except BaseException:
                    self._open -= 1
                    self._wake(None)
                    raise
            waiter: asyncio.Future[asyncpg.Connection | None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                conn = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    # Handed a connection (or a free slot) just as this waiter was cancelled: pass it on.
                    given = waiter.result()
                    if given is None:
                        self._wake(None)
                    else:
                        self.release(given)
                else:
                    self._waiters.remove(waiter)
                raise
            if conn is not None:
                return conn
            # None: a connection was dropped, so there is room to open one; go round again.

    def release(self, conn: asyncpg.Connection, *, reusable: bool = True) -> None:
        """Take `conn` back; with `reusable` False (interrupted mid-statement) or closed, drop it instead."""
        if self._closed or not reusable or conn.is_closed():
            self._open -= 1
            if not conn.is_closed():
                conn.terminate()
            self._wake(None)
            return
        if self._wake(conn):
            return
        self._idle.append((conn, time.monotonic()))
        if self._sweep is None:
            self._sweep = asyncio.get_running_loop().call_later(self._idle_seconds, self._close_idle)

    def _wake(self, given: asyncpg.Connection | None) -> bool:
        """Hand `given` (or, with None, a free slot) to the oldest waiter; False if nobody waits."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(given)
                return True
        return False

    def _close_idle(self) -> None:
        """Close connections idle longer than `idle_seconds` (they sit at the bottom of the stack)."""
        self._sweep = None
        cutoff = time.monotonic() - self._idle_seconds
        stale = 0
        while stale < len(self._idle) and self._idle[stale][1] <= cutoff:
            stale += 1
        for conn, _ in self._idle[:stale]:
            self._open -= 1
            self._close_later(conn)
        del self._idle[:stale]
        if self._idle:
            wait = self._idle[0][1] + self._idle_seconds - time.monotonic()
            self._sweep = asyncio.get_running_loop().call_later(max(wait, 1.0), self._close_idle)

    def _close_later(self, conn: asyncpg.Connection) -> None:
        task = asyncio.ensure_future(_close_quietly(conn))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """Close the idle connections; one still in use is closed when it comes back."""
        self._closed = True
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        idle, self._idle = self._idle, []
        self._open -= len(idle)
        for conn, _ in idle:
            self._close_later(conn)
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(asyncpg.InterfaceError("the pool is closed"))
        self._waiters.clear()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)


async def _close_quietly(conn: asyncpg.Connection) -> None:
    try:
        await conn.close(timeout=5)
    except Exception:  # already gone, or the server did not answer: drop the socket
        conn.terminate()


class AsyncpgHotStore:
    """The hot statements on asyncpg directly, through a pool of its own of at most `size` connections."""

    def __init__(self, db: Database, size: int) -> None:
        self._db = db
        self._size = size
        _, self._connect = db.engine.dialect.create_connect_args(db.engine.url)
        self._pool = ConnectionPool(size, self._connect)
        # Called with a DATABASE_ERROR_KINDS value for each failed statement or connection (the metrics set it).
        self.on_error: Callable[[str], None] | None = None

    async def _run(self, work: Callable[[Any], Awaitable[T]], *, retry: bool) -> T:
        """`work(asyncpg_connection)` on a pooled connection; once more on a fresh one if the first was dead and
        `retry` (reads only: a write whose connection died may have been applied)."""
        pool = self._pool
        for attempt in (0, 1):
            try:
                conn = await pool.acquire()
            except Exception as error:  # refused, unreachable or refusing us while connecting
                self._count(error, True)
                raise
            self._db.statements += 1
            try:
                result = await work(conn)
            except Exception as error:
                closed = _is_closed(conn)
                pool.release(conn)
                self._count(error, closed)
                if not closed or not retry or attempt:
                    raise
            except BaseException:
                # Cancelled mid-statement: the connection's state is unknown, so it is not handed out again.
                pool.release(conn, reusable=False)
                raise
            else:
                pool.release(conn)
                return result
            log.info("a pooled database connection was closed by the server; reading again on another")
        raise AssertionError("unreachable")  # pragma: no cover

    def _count(self, error: Exception, disconnected: bool) -> None:
        if self.on_error is None:
            return
        if disconnected or isinstance(error, (OSError, asyncpg.InterfaceError)):
            self.on_error("connection")
        elif isinstance(error, asyncpg.IntegrityConstraintViolationError):
            self.on_error("integrity")
        else:
            self.on_error("other")

    def pool_counts(self) -> tuple[int, int, int]:
        """(in use, idle, limit) of the pool, for the pool gauges."""
        return self._pool.counts()

    async def close(self) -> None:
        # A fresh pool takes over: the store may be used again after closing, as SQLAlchemy's engine may.
        pool, self._pool = self._pool, ConnectionPool(self._size, self._connect)
        await pool.close()

    async def find_token_with_user(self, token_hash: str) -> tuple[TokenView, UserView | None] | None:
        row = await self._run(lambda conn: conn.fetchrow(_SELECT_GRANT_ROW, token_hash), retry=True)
        if row is None:
            return None
        token = TokenView(*row[:11])
        user = UserView(row[11], row[12], row[13], row[14], row[15]) if row[11] is not None else None
        return token, user

    async def rotate_refresh(self, rotation: Rotation) -> Rotated | None:
        r = rotation
        args = (
            r.token_hash,
            r.client_id,
            r.now,
            r.idle_before,
            list(r.requested) if r.requested is not None else None,
            r.access_hash,
            r.access_expires_at,
            r.refresh_hash or "",
            r.refresh_expires_at,
            r.refresh_hash is not None,
        )
        row = await self._run(lambda conn: conn.fetchrow(_ROTATE_REFRESH, *args), retry=False)
        return Rotated(*row) if row is not None else None

    async def insert_tokens(self, rows: Sequence[dict[str, object]]) -> None:
        values = [row[column] for row in rows for column in TOKEN_COLUMNS]
        if len(rows) == 1:
            await self._run(lambda conn: conn.execute(_INSERT_TOKEN, *values), retry=False)
        elif len(rows) == 2:
            await self._run(lambda conn: conn.execute(_INSERT_TWO_TOKENS, *values), retry=False)
        else:  # pragma: no cover - the hot path inserts one token or a pair
            raise ValueError("one or two tokens at a time")

    async def finish_sign_in(self, finish: SignInFinish) -> bool:
        f = finish
        args = (
            f.user_id,
            f.now,
            f.expires_at,
            f.pending_expires_at,
            f.device_hash,
            list(f.hit_ids),
            list(f.clear_keys),
            *(f.session[column] for column in SESSION_COLUMNS),
            *(f.signed_in_event[column] for column in AUDIT_COLUMNS),
            *(f.pending_event[column] for column in AUDIT_COLUMNS),
        )
        return bool(await self._run(lambda conn: conn.fetchval(_FINISH_SIGN_IN, *args), retry=False))


def _is_closed(conn: Any) -> bool:
    return bool(conn.is_closed())


def hot_store(db: Database, size: int) -> HotStore:
    """asyncpg directly on PostgreSQL (a pool of at most `size` connections), SQLAlchemy on SQLite or for size 0."""
    return OrmHotStore(db) if db.is_sqlite or size < 1 else AsyncpgHotStore(db, size)
