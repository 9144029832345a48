"""SQL for signing keys."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from idp.store.models import SigningKey


async def insert_key(session: AsyncSession, key: SigningKey) -> None:
    session.add(key)
    await session.flush()


async def list_live_keys(session: AsyncSession) -> Sequence[SigningKey]:
    """Keys not yet retired, newest first."""
    query = select(SigningKey).where(SigningKey.retired_at.is_(None)).order_by(SigningKey.created_at.desc())
    return (await session.execute(query)).scalars().all()


async def list_live_kids(session: AsyncSession) -> set[str]:
    """Just the ids of live keys: a cheap check whether another replica rotated."""
    return set((await session.execute(select(SigningKey.kid).where(SigningKey.retired_at.is_(None)))).scalars())


async def list_keys(session: AsyncSession) -> Sequence[SigningKey]:
    return (await session.execute(select(SigningKey).order_by(SigningKey.created_at.desc()))).scalars().all()


async def retire_key(session: AsyncSession, kid: str, now: datetime) -> bool:
    result = await session.execute(
        update(SigningKey).where(SigningKey.kid == kid, SigningKey.retired_at.is_(None)).values(retired_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
