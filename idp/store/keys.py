"""SQL for signing keys."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import false, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from idp.store.models import SigningKey

# Any constant other than the migrations' lock (migrations/env.py): every replica creating keys takes this one.
KEY_CREATION_LOCK_ID = 7_415_020_262


async def lock_key_creation(session: AsyncSession) -> None:
    """Make other processes creating keys wait until this transaction ends (replicas starting together)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": KEY_CREATION_LOCK_ID})
    else:
        # SQLite: any write statement, even one matching no row, takes the database's write lock until commit.
        await session.execute(update(SigningKey).where(false()).values(kid=SigningKey.kid))


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
    return bool(result.rowcount)  # type: ignore[attr-defined]  # DML runs to a CursorResult; execute() is typed Result
