"""SQL for rate-limit hits (one row per counted failure, counted over a sliding window) and known devices.

Every delete or update of hits on the request path locks its rows in one order (ascending id), in a subquery of
the same statement, so concurrent sign-ins that take back their reservations and clear an account's failures wait
for each other but never deadlock (PostgreSQL otherwise locks in scan order, which differs between statements).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Select, case, delete, false, func, insert, or_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from idp.store.models import KnownDevice, RateLimitHit


@dataclass(frozen=True)
class HitCount:
    counted: int  # failures, plus attempts still being checked that came first (ids up to the caller's)
    failed: int  # failures alone: attempts known to have failed, or reservations abandoned long ago
    oldest: datetime


async def count_hits(
    session: AsyncSession,
    keys: Sequence[str],
    since: datetime,
    *,
    upto_id: int | None = None,
    abandoned_before: datetime | None = None,
) -> dict[str, HitCount]:
    """For each key with hits after `since`: counts and the oldest hit's time (one indexed query).

    Attempts still being checked count only when their id is at most `upto_id` (they came first); without it
    they all count. Reservations from before `abandoned_before` count as failures (their replica died).
    """
    failed: ColumnElement[bool] = RateLimitHit.settled.is_(True)
    if abandoned_before is not None:
        failed = or_(failed, RateLimitHit.at <= abandoned_before)
    counted = or_(failed, RateLimitHit.id <= upto_id) if upto_id is not None else true()
    result = await session.execute(
        select(
            RateLimitHit.key,
            func.count(),
            func.min(RateLimitHit.at),
            func.sum(case((counted, 1), else_=0)),
            func.sum(case((failed, 1), else_=0)),
        )
        .where(RateLimitHit.key.in_(list(keys)), RateLimitHit.at > since)
        .group_by(RateLimitHit.key)
    )
    return {
        key: HitCount(counted=int(n_counted or 0), failed=int(n_failed or 0), oldest=oldest)
        for key, _, oldest, n_counted, n_failed in result.all()
    }


async def add_hits(session: AsyncSession, keys: Sequence[str], at: datetime) -> list[int]:
    """Insert one hit per key; returns their ids (so a reservation can be taken back)."""
    if not keys:
        return []
    rows = [{"key": key, "at": at} for key in keys]
    # The rows as parameters, not in the statement (`.values(rows)`): then SQLAlchemy caches the compiled INSERT
    # and still sends it as one multi-row statement ("insertmanyvalues"); built into the statement it was compiled
    # again on every sign-in.
    result = await session.execute(insert(RateLimitHit).returning(RateLimitHit.id), rows)
    return list(result.scalars())


def _locked_in_id_order(condition: ColumnElement[bool]) -> Select[int]:
    # The subquery's ORDER BY id FOR UPDATE takes the row locks in id order before the outer statement touches a
    # row, in the same statement (PostgreSQL; SQLite has one writer and no row locks, so FOR UPDATE is not sent).
    return select(RateLimitHit.id).where(condition).order_by(RateLimitHit.id).with_for_update()


async def _delete_in_id_order(session: AsyncSession, condition: ColumnElement[bool]) -> int:
    result = await session.execute(delete(RateLimitHit).where(RateLimitHit.id.in_(_locked_in_id_order(condition))))
    return result.rowcount or 0  # type: ignore[attr-defined]  # DML runs to a CursorResult; execute() is typed Result


async def delete_hits(session: AsyncSession, ids: Sequence[int], *, keys: Sequence[str] = ()) -> int:
    """Delete the hits `ids` and every hit of `keys`, in one ordered lock; how many went."""
    if not ids and not keys:
        return 0
    by_id = RateLimitHit.id.in_(list(ids)) if ids else false()
    by_key = RateLimitHit.key.in_(list(keys)) if keys else false()
    return await _delete_in_id_order(session, or_(by_id, by_key))


async def clear_hits(session: AsyncSession, keys: Sequence[str]) -> int:
    """Delete every hit of `keys` (a success or an operator's unlock)."""
    return await delete_hits(session, (), keys=keys)


async def settle_hits(session: AsyncSession, ids: Sequence[int]) -> None:
    """Mark reservations as failures (the attempt was checked and was wrong); locks taken in id order."""
    if not ids:
        return
    locked = _locked_in_id_order(RateLimitHit.id.in_(list(ids)))
    await session.execute(update(RateLimitHit).where(RateLimitHit.id.in_(locked)).values(settled=True))


async def purge_hits(session: AsyncSession, before: datetime) -> int:
    """Housekeeping: drop aged-out hits, skipping rows a request holds (they go next time), so it never waits."""
    locked = await session.execute(
        select(RateLimitHit.id).where(RateLimitHit.at <= before).with_for_update(skip_locked=True)
    )
    ids = list(locked.scalars())
    if ids:
        await session.execute(delete(RateLimitHit).where(RateLimitHit.id.in_(ids)))
    return len(ids)


# -- known devices --------------------------------------------------------------------------------------------


async def is_known_device(session: AsyncSession, key_hash: str) -> bool:
    found = await session.execute(select(KnownDevice.key_hash).where(KnownDevice.key_hash == key_hash))
    return found.scalar_one_or_none() is not None


async def remember_device(session: AsyncSession, key_hash: str, user_id: str, now: datetime) -> None:
    """Record that a device signed in to `user_id` (idempotent, race-free across replicas)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    await session.execute(
        dialect.insert(KnownDevice)
        .values(key_hash=key_hash, user_id=user_id, created_at=now)
        .on_conflict_do_nothing(index_elements=["key_hash"])
    )


async def known_devices_of(session: AsyncSession, user_id: str) -> list[str]:
    """The key hashes of every device known to have signed in to `user_id` (for an operator's unlock)."""
    result = await session.execute(select(KnownDevice.key_hash).where(KnownDevice.user_id == user_id))
    return list(result.scalars())
