"""SQL for staff roles on idp accounts (the support console's `support` and `admin`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from idp.store.models import UserRole


async def roles_of(session: AsyncSession, user_id: str) -> list[str]:
    """The person's roles, sorted."""
    query = select(UserRole.role).where(UserRole.user_id == user_id).order_by(UserRole.role)
    return list((await session.execute(query)).scalars().all())


async def roles_of_users(session: AsyncSession, user_ids: Sequence[str]) -> dict[str, list[str]]:
    """Roles of each of `user_ids` in one statement (a page of search results)."""
    if not user_ids:
        return {}
    query = select(UserRole.user_id, UserRole.role).where(UserRole.user_id.in_(list(user_ids))).order_by(UserRole.role)
    result: dict[str, list[str]] = {}
    for user_id, role in (await session.execute(query)).all():
        result.setdefault(user_id, []).append(role)
    return result


async def insert_role(session: AsyncSession, user_id: str, role: str, now: datetime) -> bool:
    """Grant `role`; False when the person already holds it (a concurrent grant included)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(UserRole)
        .values(user_id=user_id, role=role, granted_at=now)
        .on_conflict_do_nothing(index_elements=["user_id", "role"])
    )
    result = await session.execute(statement)
    return bool(result.rowcount)  # type: ignore[attr-defined]  # DML runs to a CursorResult; execute() is typed Result


async def delete_role(session: AsyncSession, user_id: str, role: str) -> bool:
    """Take `role` away; False when the person did not hold it."""
    result = await session.execute(delete(UserRole).where(UserRole.user_id == user_id, UserRole.role == role))
    return bool(result.rowcount)  # type: ignore[attr-defined]  # DML runs to a CursorResult; execute() is typed Result
