"""SQL for admin API tokens."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from idp.store.models import AdminToken


async def insert_token(session: AsyncSession, token: AdminToken) -> None:
    session.add(token)
    await session.flush()


async def find_by_hash(session: AsyncSession, token_hash: str) -> AdminToken | None:
    return (await session.execute(select(AdminToken).where(AdminToken.token_hash == token_hash))).scalar_one_or_none()


async def mark_used(session: AsyncSession, token_id: str, now: datetime) -> None:
    await session.execute(update(AdminToken).where(AdminToken.id == token_id).values(last_used_at=now))


async def list_tokens(session: AsyncSession) -> Sequence[AdminToken]:
    return (await session.execute(select(AdminToken).order_by(AdminToken.created_at))).scalars().all()


async def revoke_token(session: AsyncSession, token_id: str, now: datetime) -> bool:
    result = await session.execute(
        update(AdminToken).where(AdminToken.id == token_id, AdminToken.revoked_at.is_(None)).values(revoked_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]  # DML runs to a CursorResult; execute() is typed Result
