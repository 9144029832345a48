"""SQL for users."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from idp.errors import Conflict
from idp.store.models import User


async def insert_user(session: AsyncSession, user: User) -> User:
    """Insert `user`; Conflict when the email is taken (whatever its case)."""
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict("a user with this email already exists") from None
    return user


async def find_user_by_email(session: AsyncSession, email_norm: str) -> User | None:
    return (await session.execute(select(User).where(User.email_norm == email_norm))).scalar_one_or_none()


async def find_user(session: AsyncSession, user_id: str) -> User | None:
    return await session.get(User, user_id)


async def set_password_hash(session: AsyncSession, user_id: str, password_hash: str, now: datetime) -> None:
    await session.execute(update(User).where(User.id == user_id).values(password_hash=password_hash, updated_at=now))
