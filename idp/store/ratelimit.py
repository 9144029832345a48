"""SQL for rate-limit hits: one row per counted failure, counted over a sliding window."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from idp.store.models import RateLimitHit


async def count_hits(session: AsyncSession, keys: Sequence[str], since: datetime) -> dict[str, tuple[int, datetime]]:
    """For each key with hits after `since`: how many, and the oldest one's time (one indexed query)."""
    result = await session.execute(
        select(RateLimitHit.key, func.count(), func.min(RateLimitHit.at))
        .where(RateLimitHit.key.in_(list(keys)), RateLimitHit.at > since)
        .group_by(RateLimitHit.key)
    )
    return {key: (count, oldest) for key, count, oldest in result.all()}


async def add_hits(session: AsyncSession, keys: Sequence[str], at: datetime) -> list[int]:
    """Insert one hit per key; returns their ids (so a reservation can be taken back)."""
    if not keys:
        return []
    rows = [{"key": key, "at": at} for key in keys]
    result = await session.execute(insert(RateLimitHit).values(rows).returning(RateLimitHit.id))
    return list(result.scalars())


async def delete_hits(session: AsyncSession, ids: Sequence[int]) -> None:
    if ids:
        await session.execute(delete(RateLimitHit).where(RateLimitHit.id.in_(list(ids))))


async def clear_hits(session: AsyncSession, key: str) -> None:
    await session.execute(delete(RateLimitHit).where(RateLimitHit.key == key))


async def purge_hits(session: AsyncSession, before: datetime) -> int:
    result = await session.execute(delete(RateLimitHit).where(RateLimitHit.at <= before))
    return result.rowcount or 0  # type: ignore[attr-defined]
