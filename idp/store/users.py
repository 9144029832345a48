"""SQL for users."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from idp.errors import Conflict
from idp.store.models import LegacyPasswordHash, User


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


async def lock_person(session: AsyncSession, user_id: str) -> User | None:
    """The person's row, held until the transaction ends (PostgreSQL FOR NO KEY UPDATE; SQLite has one writer).

    Every transaction that changes several of a person's tables (password, links, second factors, sessions) takes
    it first, so two of them queue one behind the other instead of each locking rows the other needs next, a
    deadlock. NO KEY UPDATE still lets rows that refer to the person (sessions, audit events) be inserted."""
    query = hold_person(select(User), User.id == user_id).execution_options(populate_existing=True)
    user: User | None = (await session.execute(query)).scalar_one_or_none()
    return user


def hold_person(query: Select[Any], which: ColumnElement[bool]) -> Select[Any]:
    """`query` over the users row(s) `which` picks, locked as `lock_person` locks them."""
    return query.where(which).with_for_update(key_share=True)


async def set_password_hash(
    session: AsyncSession, user_id: str, password_hash: str, now: datetime, *, email_verified: bool | None = None
) -> None:
    """The person's own argon2id hash: it replaces every hash imported from a job board (INTERFACE §7)."""
    values: dict[str, object] = {"password_hash": password_hash, "updated_at": now}
    if email_verified is not None:
        values["email_verified"] = email_verified
    await session.execute(update(User).where(User.id == user_id).values(**values))
    await session.execute(delete(LegacyPasswordHash).where(LegacyPasswordHash.user_id == user_id))


async def list_users(
    session: AsyncSession, *, email_norm: str | None = None, after_id: str | None = None, limit: int = 50
) -> Sequence[User]:
    """Users ordered by id (random, so a stable but meaningless order), `limit` after `after_id`."""
    query = select(User).order_by(User.id).limit(limit)
    if email_norm is not None:
        query = query.where(User.email_norm == email_norm)
    if after_id is not None:
        query = query.where(User.id > after_id)
    return (await session.execute(query)).scalars().all()


async def update_user(session: AsyncSession, user_id: str, values: dict[str, object]) -> bool:
    result = await session.execute(update(User).where(User.id == user_id).values(**values))
    return bool(result.rowcount)  # type: ignore[attr-defined]  # DML runs to a CursorResult; execute() is typed Result


async def delete_user(session: AsyncSession, user_id: str) -> bool:
    result = await session.execute(delete(User).where(User.id == user_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]  # DML runs to a CursorResult; execute() is typed Result


async def search_users_by_email_prefix(session: AsyncSession, prefix_norm: str, *, limit: int) -> Sequence[User]:
    """Users whose compared email starts with `prefix_norm`, by email; LIKE's wildcards in it match themselves."""
    escaped = prefix_norm.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    query = select(User).where(User.email_norm.like(escaped + "%", escape="\\")).order_by(User.email_norm).limit(limit)
    return (await session.execute(query)).scalars().all()


async def change_email(session: AsyncSession, user_id: str, email: str, email_norm: str, now: datetime) -> None:
    """The person's new sign-in address, verified (they used a link sent to it); Conflict when it is taken."""
    # The caller checked the address is free; a race lost here aborts the whole transaction, which then rolls back.
    try:
        await session.execute(
            update(User)
            .where(User.id == user_id)
            .values(email=email, email_norm=email_norm, email_verified=True, updated_at=now)
        )
    except IntegrityError:
        raise Conflict("a user with this email already exists") from None
