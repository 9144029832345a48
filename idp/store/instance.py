"""SQL for instance secrets, created race-free: the first replica's value wins, every other reads it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from idp.store.models import InstanceSecret


async def find_secret(session: AsyncSession, name: str) -> str | None:
    """The value kept under `name`, or None."""
    return (await session.execute(select(InstanceSecret.value).where(InstanceSecret.name == name))).scalar_one_or_none()


async def get_or_create_secret(session: AsyncSession, name: str, candidate: str, now: datetime) -> str:
    """Store `candidate` under `name` unless a value is there already; return the value that is kept."""
    # Read first: every start after the first is then a pure read, so an operator command never waits on (or
    # times out behind) another process's write lock just to start.
    kept = await find_secret(session, name)
    if kept is not None:
        return kept
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(InstanceSecret)
        .values(name=name, value=candidate, created_at=now)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    await session.execute(statement)
    return (await session.execute(select(InstanceSecret.value).where(InstanceSecret.name == name))).scalar_one()
