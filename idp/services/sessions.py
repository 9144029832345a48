"""Server-side sign-in sessions: random id in the cookie, its SHA-256 in the database, idle and absolute expiry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from idp.auth.tokens import new_opaque, sha256_hex
from idp.clock import Clock
from idp.errors import DomainError, NotFound
from idp.services.audit import AuditLog
from idp.services.backchannel import enqueue_logouts
from idp.store import mfa as mfa_store
from idp.store import outbox as outbox_store
from idp.store import passkeys as passkeys_store
from idp.store import sessions as store
from idp.store.db import Database
from idp.store.models import User

# Writing last_seen on every request would turn each page view into a write; a minute's slack is harmless.
TOUCH_INTERVAL = timedelta(seconds=60)


class SessionEnded(DomainError):
    """The session was ended (signed out, or by a password reset, an operator, two-step verification turned on or
    off) after the request found it: nothing it asked for happens."""


class _WriteNeeded(Exception):
    """A read-only resolve found that the session must be touched or ended."""


# Cookie values are 43 characters; anything much longer is not ours and is not worth hashing.
MAX_COOKIE_LENGTH = 100
# A password-checked session waiting for its second step lives this long at most.
PENDING_LIFETIME = timedelta(minutes=10)
# Backup codes just generated stay readable (download, print) in their session this long, then are dropped.
FRESH_CODES = timedelta(minutes=10)
# An authenticator secret not confirmed within this time starts over with a new one.
PENDING_ENROLLMENT = timedelta(minutes=15)
# A passkey challenge (WebAuthn) is answered within this time or not at all.
PASSKEY_CHALLENGE = timedelta(minutes=5)


@dataclass(frozen=True)
class ActiveSession:
    """A valid session and who it belongs to."""

    id_hash: str
    sid: str
    user: User
    auth_time: datetime
    methods: tuple[str, ...]
    created_at: datetime
    expires_at: datetime
    pending: bool = False
    user_agent: str = ""


# Enough of a User-Agent to name the browser; the rest is noise that only makes the row bigger.
MAX_USER_AGENT = 256
# First match wins: Edge and Opera say "Chrome" too, Chrome says "Safari".
_BROWSERS = (
    ("Edg/", "Edge"),
    ("EdgiOS/", "Edge"),
    ("OPR/", "Opera"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("Firefox/", "Firefox"),
    ("FxiOS/", "Firefox"),
    ("CriOS/", "Chrome"),
    ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
)
_SYSTEMS = (
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Android", "Android"),
    ("Windows", "Windows"),
    ("CrOS", "ChromeOS"),
    ("Mac OS X", "macOS"),
    ("Macintosh", "macOS"),
    ("Linux", "Linux"),
)


def describe_browser(user_agent: str) -> tuple[str, str]:
    """The browser and operating system a User-Agent names, in words ("" for each one not recognised).

    A small table of our own rather than a dependency: the page needs a name a person recognises, not a version."""
    browser = next((name for token, name in _BROWSERS if token in user_agent), "")
    system = next((name for token, name in _SYSTEMS if token in user_agent), "")
    return browser, system


@dataclass(frozen=True)
class SessionView:
    """One of a person's signed-in sessions as the sessions page and the admin API show it."""

    sid: str
    created_at: datetime
    last_seen_at: datetime
    client_ip: str
    user_agent: str
    browser: str
    system: str
    methods: tuple[str, ...]
    # (client_id, name) of every job board that got a code or token in this session.
    clients: tuple[tuple[str, str], ...]
    current: bool = False


@dataclass(frozen=True)
class JobBoards:
    """Job boards signed in through one session: those told of its end (Back-Channel Logout), and the rest."""

    signed_out: tuple[str, ...]
    not_told: tuple[str, ...]


class SessionService:
    """Create, resolve and end sessions."""

    def __init__(self, db: Database, clock: Clock, *, idle_seconds: int, absolute_seconds: int) -> None:
        self._db = db
        self._clock = clock
        self.idle = timedelta(seconds=idle_seconds)
        self.absolute = timedelta(seconds=absolute_seconds)

    async def create(
        self,
        session: AsyncSession,
        user: User,
        methods: tuple[str, ...],
        *,
        client_ip: str = "",
        user_agent: str = "",
        pending: bool = False,
        created_at: datetime | None = None,
        expires_at: datetime | None = None,
        sid: str | None = None,
        auth_time: datetime | None = None,
    ) -> str:
        """Start a session for `user` signed in with `methods`; returns the cookie value (never stored).

        A `pending` session has passed the password only and signs nobody in until the second step.
        """
        cookie, row = self.new_row(
            user.id,
            methods,
            client_ip=client_ip,
            user_agent=user_agent,
            created_at=created_at,
            sid=sid,
            auth_time=auth_time,
        )
        await store.insert_session(
            session, {**row, "pending": pending, "expires_at": expires_at or self.expiry(pending=pending)}
        )
        return cookie

    def new_row(
        self,
        user_id: str,
        methods: tuple[str, ...],
        *,
        client_ip: str = "",
        user_agent: str = "",
        created_at: datetime | None = None,
        sid: str | None = None,
        auth_time: datetime | None = None,
    ) -> tuple[str, dict[str, object]]:
        """A new session's cookie and its row, without `pending` and `expires_at` (see `expiry`)."""
        now = self._clock.now()
        cookie = new_opaque(32)
        return cookie, {
            "id_hash": sha256_hex(cookie),
            "user_id": user_id,
            "created_at": created_at or now,
            "last_seen_at": now,
            "auth_time": auth_time or now,
            "methods": " ".join(methods),
            "sid": sid or new_opaque(24),
            "client_ip": client_ip[:45],
            "user_agent": user_agent[:MAX_USER_AGENT],
        }

    def expiry(self, *, pending: bool) -> datetime:
        """When a session started now ends: soon if it waits for the second step, else after the absolute lifetime."""
        return self._clock.now() + (PENDING_LIFETIME if pending else self.absolute)

    async def resolve(
        self, session: AsyncSession, cookie: str | None, *, allow_pending: bool = False, read_only: bool = False
    ) -> ActiveSession | None:
        """The live session behind `cookie`, or None; an expired one is deleted on the way.

        Pending sessions (password done, second step not) count only with `allow_pending`. With `read_only`,
        raises _WriteNeeded instead of deleting or touching (the caller then resolves in a transaction).
        """
        if not cookie or len(cookie) > MAX_COOKIE_LENGTH:
            return None
        id_hash = sha256_hex(cookie)
        found = await store.find_session_with_user(session, id_hash)
        if found is None:
            return None
        row, user = found
        now = self._clock.now()
        if row.expires_at <= now or row.last_seen_at + self.idle <= now or user.disabled:
            if read_only:
                raise _WriteNeeded
            await enqueue_logouts(session, await store.delete_session(session, id_hash), now)
            return None
        if row.pending and not allow_pending:
            return None
        if now - row.last_seen_at >= TOUCH_INTERVAL:
            if read_only:
                raise _WriteNeeded
            await store.touch_session(session, id_hash, now)
        return ActiveSession(
            id_hash=id_hash,
            sid=row.sid,
            user=user,
            auth_time=row.auth_time,
            methods=tuple(row.methods.split()),
            created_at=row.created_at,
            expires_at=row.expires_at,
            pending=row.pending,
            user_agent=row.user_agent,
        )

    async def current(self, cookie: str | None, *, allow_pending: bool = False) -> ActiveSession | None:
        """`resolve` in its own transaction, for pages that only need to know who is signed in."""
        if not cookie:
            return None
        # Most page loads only read (the session is touched at most once a minute): look without a transaction,
        # and take one only when the session must be touched or ended.
        try:
            return await self._db.read(
                lambda session: self.resolve(session, cookie, allow_pending=allow_pending, read_only=True)
            )
        except _WriteNeeded:
            pass
        async with self._db.transaction() as session:
            return await self.resolve(session, cookie, allow_pending=allow_pending)

    async def elevate(
        self, session: AsyncSession, active: ActiveSession, methods: tuple[str, ...], *, client_ip: str = ""
    ) -> str:
        """Replace `active` with a session signed in by `methods` under a NEW id (the privilege changed).

        The `sid` and `auth_time` stay: the person signed in with the password then, and a second factor
        later does not make that sign-in fresh for `prompt=login` or `max_age` (issue #10.15). The session goes
        on under its sid, so no client is told of an end.

        SessionEnded when `active` is gone by now: whatever ended it, it must not come back under a new id."""
        if not await store.delete_session(session, active.id_hash):
            raise SessionEnded("the session ended meanwhile")
        expires_at = None if active.pending else active.expires_at
        created_at = None if active.pending else active.created_at
        return await self.create(
            session,
            active.user,
            methods,
            client_ip=client_ip,
            user_agent=active.user_agent,
            created_at=created_at,
            expires_at=expires_at,
            sid=active.sid,
            auth_time=active.auth_time,
        )

    async def job_boards(self, active: ActiveSession | None) -> JobBoards:
        """The job boards signed in through `active`: those a sign-out tells (back-channel URI), and the others."""
        if active is None:
            return JobBoards((), ())
        async with self._db.transaction() as session:
            names = await outbox_store.client_names_of_session(session, active.sid)
        return JobBoards(tuple(n for n, told in names if told), tuple(n for n, told in names if not told))

    async def sign_out(self, cookie: str | None, *, client_ip: str, audit: AuditLog) -> JobBoards:
        """End the session behind `cookie` (if any) and record it; returns the job boards it was signed in to."""
        async with self._db.transaction() as session:
            active = await self.resolve(session, cookie)
            if active is None:
                return JobBoards((), ())
            names = await outbox_store.client_names_of_session(session, active.sid)
            ended = await store.delete_session(session, active.id_hash)
            # In the same transaction, and only queued: a job board that is down must not slow sign-out.
            await enqueue_logouts(session, ended, self._clock.now())
            await audit.record(session, "logout", user_id=active.user.id, client_ip=client_ip)
        return JobBoards(tuple(n for n, told in names if told), tuple(n for n, told in names if not told))

    async def end(self, session: AsyncSession, cookie: str | None) -> None:
        """End the session behind `cookie` (if any) inside the caller's transaction; its clients are told."""
        if cookie and len(cookie) <= MAX_COOKIE_LENGTH:
            ended = await store.delete_session(session, sha256_hex(cookie))
            await enqueue_logouts(session, ended, self._clock.now())

    async def purge_expired(self, session: AsyncSession) -> int:
        """Housekeeping: expired sessions, and per-session secrets past their time (fresh backup codes, setups)."""
        now = self._clock.now()
        await store.clear_fresh_codes_before(session, now - FRESH_CODES)
        await mfa_store.delete_enrollments_before(session, now - PENDING_ENROLLMENT)
        await passkeys_store.delete_challenges_before(session, now - PASSKEY_CHALLENGE)
        ended = await store.delete_expired_sessions(session, now, now - self.idle)
        await enqueue_logouts(session, ended, now)
        return len(ended)

    # -- the sessions page (INTERFACE §4) ----------------------------------------------------------------

    async def list_of_user(
        self, user_id: str, *, current_sid: str | None = None, after: str | None = None, limit: int = 100
    ) -> list[SessionView]:
        """The person's signed-in sessions with the job boards each signed into, ordered by their opaque id."""
        now = self._clock.now()
        async with self._db.transaction() as session:
            rows = await store.list_live_sessions(session, user_id, now, now - self.idle, after_sid=after, limit=limit)
            clients = await store.clients_of_sessions(session, [r.sid for r in rows])
        return [
            SessionView(
                sid=r.sid,
                created_at=r.created_at,
                last_seen_at=r.last_seen_at,
                client_ip=r.client_ip,
                user_agent=r.user_agent,
                browser=describe_browser(r.user_agent)[0],
                system=describe_browser(r.user_agent)[1],
                methods=tuple(r.methods.split()),
                clients=tuple(clients.get(r.sid, ())),
                current=r.sid == current_sid,
            )
            for r in rows
        ]

    async def sign_out_session(self, active: ActiveSession, sid: str, *, client_ip: str, audit: AuditLog) -> None:
        """End one of the person's own sessions, named by its `sid`; NotFound when it is not one of theirs.

        Its online refresh tokens die with it (their refresh checks the session); offline ones go on."""
        async with self._db.transaction() as session:
            ended = await store.delete_session_by_sid(session, active.user.id, sid) if len(sid) <= 43 else []
            if not ended:
                raise NotFound("no such session of yours")
            await enqueue_logouts(session, ended, self._clock.now())
            await audit.record(
                session,
                "session.signed_out",
                user_id=active.user.id,
                client_ip=client_ip,
                this_browser=sid == active.sid,
            )

    async def sign_out_others(self, active: ActiveSession, *, client_ip: str, audit: AuditLog) -> int:
        """End every session of the person but this one; returns how many ended."""
        async with self._db.transaction() as session:
            ended = await store.delete_other_sessions(session, active.user.id, active.id_hash)
            await enqueue_logouts(session, ended, self._clock.now())
            await audit.record(
                session,
                "session.signed_out_elsewhere",
                user_id=active.user.id,
                client_ip=client_ip,
                sessions_ended=len(ended),
            )
        return len(ended)
