"""The hot statements: token lookups for introspection and userinfo, token inserts, and refresh rotation.

Two implementations with one behaviour (tests/store/test_hot.py runs both): `OrmHotStore` through SQLAlchemy (SQLite,
and the reference), and `AsyncpgHotStore` for PostgreSQL, which sends each statement through asyncpg directly:
prepared once per connection (asyncpg's statement cache), no BEGIN/COMMIT around a single statement, none of
SQLAlchemy's per-execution work. It has its own asyncpg pool (its share of IDP_DATABASE_POOL_SIZE, see
`Database`), because borrowing from SQLAlchemy's pool costs two greenlet switches per statement; the pool sends no
reset query when a connection comes back. Statements count on the same counter as SQLAlchemy's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import asyncpg

from idp.store import grants as orm

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


class HotStore(Protocol):
    """The statements of the hot path, one round trip each."""

    async def find_token_with_user(self, token_hash: str) -> tuple[TokenView, UserView | None] | None: ...

    async def insert_tokens(self, rows: Sequence[dict[str, object]]) -> None: ...

    async def rotate_refresh(self, rotation: Rotation) -> Rotated | None:
        """Use a live, unexpired refresh token of the client whose person is enabled and whose requested scopes
        were granted, and insert the new access (and refresh) token, atomically; None, with nothing changed,
        for any other case (the caller then finds out which, and handles reuse)."""
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


class AsyncpgHotStore:
    """The hot statements on asyncpg directly, through a pool of its own of at most `size` connections."""

    def __init__(self, db: Database, size: int) -> None:
        self._db = db
        self._size = size
        _, self._connect = db.engine.dialect.create_connect_args(db.engine.url)
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()
        # Called with a DATABASE_ERROR_KINDS value for each failed statement or connection (the metrics set it).
        self.on_error: Callable[[str], None] | None = None

    async def _open(self) -> asyncpg.Pool:
        async with self._opening:
            if self._pool is None:
                # min_size 0: nothing is connected before the first request needs it (start-up and the CLI stay
                # as they were); a connection idle for 5 minutes is closed.
                self._pool = await asyncpg.create_pool(
                    min_size=0,
                    max_size=self._size,
                    max_inactive_connection_lifetime=300,
                    reset=_keep_state,
                    **self._connect,
                )
            return self._pool

    async def _run(self, work: Callable[[Any], Awaitable[T]], *, retry: bool) -> T:
        """`work(asyncpg_connection)` on a pooled connection; once more on a fresh one if the first was dead and
        `retry` (reads only: a write whose connection died may have been applied)."""
        pool = self._pool or await self._open()
        for attempt in (0, 1):
            try:
                # A connection asyncpg has seen close is replaced here, with no round trip.
                conn = await pool.acquire()
            except Exception as error:  # refused, unreachable or refusing us while connecting
                self._count(error, True)
                raise
            try:
                self._db.statements += 1
                return await work(conn)
            except Exception as error:
                closed = _is_closed(conn)
                self._count(error, closed)
                if not closed or not retry or attempt:
                    raise
            finally:
                await pool.release(conn)
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
        pool = self._pool
        if pool is None:
            return 0, 0, self._size
        idle = pool.get_idle_size()
        return pool.get_size() - idle, idle, pool.get_max_size()

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
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


def _is_closed(conn: Any) -> bool:
    try:
        return bool(conn.is_closed())
    except asyncpg.InterfaceError:  # already handed back: asyncpg does that when the server closed it mid-statement
        return True


async def _keep_state(_connection: asyncpg.Connection) -> None:
    """The pool's reset on release: nothing to send. Every hot statement runs outside a transaction and changes no
    session state (no LISTEN, advisory lock or SET), so asyncpg's default reset query would be a wasted round trip."""


def hot_store(db: Database, size: int) -> HotStore:
    """asyncpg directly on PostgreSQL (a pool of at most `size` connections), SQLAlchemy on SQLite or for size 0."""
    return OrmHotStore(db) if db.is_sqlite or size < 1 else AsyncpgHotStore(db, size)
