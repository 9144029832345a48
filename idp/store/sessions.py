"""SQL for server-side sign-in sessions, looked up by the SHA-256 of the cookie value."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from idp.store.models import LoginSession, User


async def insert_session(session: AsyncSession, row: LoginSession) -> None:
    session.add(row)
    await session.flush()


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
    return result.rowcount or 0  # type: ignore[attr-defined]


async def find_session(session: AsyncSession, id_hash: str) -> LoginSession | None:
    return await session.get(LoginSession, id_hash)


async def delete_other_sessions(session: AsyncSession, user_id: str, keep_id_hash: str | None) -> list[str]:
    """Delete the person's sessions but `keep_id_hash`; returns the ended sessions' sids."""
    condition = LoginSession.user_id == user_id
    if keep_id_hash:
        condition = condition & (LoginSession.id_hash != keep_id_hash)
    return await _delete_returning_sids(session, condition)
