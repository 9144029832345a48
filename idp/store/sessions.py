"""SQL for server-side sign-in sessions, looked up by the SHA-256 of the cookie value."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, insert, select, union, update
from sqlalchemy.ext.asyncio import AsyncSession

from idp.store.models import AuthorizationCode, Client, LoginSession, Token, User


async def insert_session(session: AsyncSession, row: Mapping[str, object]) -> None:
    """Insert one session row (column values; the cookie itself is never stored)."""
    await session.execute(insert(LoginSession), [dict(row)])


async def find_session_with_user(session: AsyncSession, id_hash: str) -> tuple[LoginSession, User] | None:
    """The session and its user in one round trip."""
    result = await session.execute(
        select(LoginSession, User).join(User, User.id == LoginSession.user_id).where(LoginSession.id_hash == id_hash)
    )
    row = result.first()
    return (row[0], row[1]) if row else None


async def touch_session(session: AsyncSession, id_hash: str, now: datetime) -> None:
    await session.execute(update(LoginSession).where(LoginSession.id_hash == id_hash).values(last_seen_at=now))


async def _delete_returning_sids(session: AsyncSession, condition: ColumnElement[bool]) -> list[str]:
    """Delete the matching sessions; their `sid`s, so the caller can tell the clients (Back-Channel Logout)."""
    result = await session.execute(delete(LoginSession).where(condition).returning(LoginSession.sid))
    return [sid for (sid,) in result.all()]


async def delete_session(session: AsyncSession, id_hash: str) -> list[str]:
    return await _delete_returning_sids(session, LoginSession.id_hash == id_hash)


async def delete_sessions_of_user(session: AsyncSession, user_id: str) -> list[str]:
    return await _delete_returning_sids(session, LoginSession.user_id == user_id)


async def delete_expired_sessions(session: AsyncSession, now: datetime, idle_before: datetime) -> list[str]:
    """Remove sessions past their absolute expiry or idle since before `idle_before`; returns their sids."""
    return await _delete_returning_sids(
        session, (LoginSession.expires_at <= now) | (LoginSession.last_seen_at < idle_before)
    )


async def set_fresh_codes(session: AsyncSession, id_hash: str, sealed: str | None, now: datetime | None) -> None:
    await session.execute(
        update(LoginSession).where(LoginSession.id_hash == id_hash).values(fresh_codes=sealed, fresh_codes_at=now)
    )


async def clear_fresh_codes(session: AsyncSession, id_hash: str) -> None:
    await set_fresh_codes(session, id_hash, None, None)


async def clear_fresh_codes_before(session: AsyncSession, before: datetime) -> int:
    """Housekeeping: drop the sealed copies of backup codes generated at or before `before`, in every session."""
    result = await session.execute(
        update(LoginSession).where(LoginSession.fresh_codes_at <= before).values(fresh_codes=None, fresh_codes_at=None)
    )
    return result.rowcount or 0  # type: ignore[attr-defined]  # DML runs to a CursorResult; execute() is typed Result


async def find_session(session: AsyncSession, id_hash: str) -> LoginSession | None:
    return await session.get(LoginSession, id_hash)


async def delete_other_sessions(session: AsyncSession, user_id: str, keep_id_hash: str | None) -> list[str]:
    """Delete the person's sessions but `keep_id_hash`; returns the ended sessions' sids."""
    condition = LoginSession.user_id == user_id
    if keep_id_hash:
        condition = condition & (LoginSession.id_hash != keep_id_hash)
    return await _delete_returning_sids(session, condition)


def _signed_in(now: datetime, idle_before: datetime) -> ColumnElement[bool]:
    """A session that signs someone in: past its second step, within its absolute and idle limits."""
    return and_(LoginSession.pending.is_(False), LoginSession.expires_at > now, LoginSession.last_seen_at > idle_before)


async def list_live_sessions(
    session: AsyncSession, user_id: str, now: datetime, idle_before: datetime, *, after_sid: str | None, limit: int
) -> list[LoginSession]:
    """The person's signed-in sessions ordered by `sid` (the opaque id pages and the admin API show)."""
    query = select(LoginSession).where(LoginSession.user_id == user_id, _signed_in(now, idle_before))
    if after_sid is not None:
        query = query.where(LoginSession.sid > after_sid)
    return list((await session.execute(query.order_by(LoginSession.sid).limit(limit))).scalars().all())


async def clients_of_sessions(session: AsyncSession, sids: list[str]) -> dict[str, list[tuple[str, str]]]:
    """For each sid, the (client_id, name) of the clients that got a code or a token in that session."""
    if not sids:
        return {}
    with_codes = select(AuthorizationCode.sid.label("sid"), AuthorizationCode.client_id.label("client_id")).where(
        AuthorizationCode.sid.in_(sids)
    )
    with_tokens = select(Token.sid.label("sid"), Token.client_id.label("client_id")).where(Token.sid.in_(sids))
    issued = union(with_codes, with_tokens).subquery()
    rows = await session.execute(
        select(issued.c.sid, Client.client_id, Client.name)
        .join(Client, Client.client_id == issued.c.client_id)
        .order_by(issued.c.sid, Client.name, Client.client_id)
    )
    found: dict[str, list[tuple[str, str]]] = {}
    for sid, client_id, name in rows.all():
        found.setdefault(sid, []).append((client_id, name))
    return found


async def delete_session_by_sid(session: AsyncSession, user_id: str, sid: str) -> list[str]:
    """End the person's session named `sid`; its sid, or nothing when it is not theirs (or not there)."""
    return await _delete_returning_sids(session, (LoginSession.user_id == user_id) & (LoginSession.sid == sid))
