"""SQL for used sign-in continuation markers: one INSERT decides, on every replica, which use is the first."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from idp.store.models import UsedMarker


async def use_marker(session: AsyncSession, marker_hash: str, expires_at: datetime) -> bool:
    """Record the marker as used; False if it was used before (a concurrent use waits for the first to commit)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(UsedMarker)
        .values(marker_hash=marker_hash, expires_at=expires_at)
        .on_conflict_do_nothing(index_elements=["marker_hash"])
    )
    result = await session.execute(statement)
    return bool(result.rowcount)  # type: ignore[attr-defined]  # DML runs to a CursorResult; execute() is typed Result


async def purge_expired(session: AsyncSession, before: datetime) -> None:
    """Housekeeping: an expired marker is refused anyway, so its row is no longer needed."""
    await session.execute(delete(UsedMarker).where(UsedMarker.expires_at < before))
