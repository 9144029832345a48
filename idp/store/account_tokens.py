"""SQL for single-use email links (verify the address, reset the password): stored as SHA-256, used at most once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from idp.store import users
from idp.store.models import AccountToken, User


async def insert(session: AsyncSession, token: AccountToken) -> None:
    session.add(token)
    await session.flush()


async def find_live(session: AsyncSession, token_hash: str, purpose: str, now: datetime) -> AccountToken | None:
    """The token if it exists for `purpose`, is unused and has not expired (nothing is changed)."""
    return (
        await session.execute(
            select(AccountToken).where(
                AccountToken.token_hash == token_hash,
                AccountToken.purpose == purpose,
                AccountToken.used_at.is_(None),
                AccountToken.expires_at > now,
            )
        )
    ).scalar_one_or_none()


async def consume(session: AsyncSession, token_hash: str, purpose: str, now: datetime) -> AccountToken | None:
    """Mark the token used if it is live; one UPDATE, so two replicas racing with one link cannot both win.

    The link's owner is locked first, as every transaction that changes a person's account does
    (`users.lock_person`): two links of one person used at once would otherwise each lock its own link and then
    wait for the other's, which the next step (all the person's links made void) touches."""
    owner = select(AccountToken.user_id).where(AccountToken.token_hash == token_hash).scalar_subquery()
    await session.execute(users.hold_person(select(User.id), User.id == owner))
    row = (
        await session.execute(
            update(AccountToken)
            .where(
                AccountToken.token_hash == token_hash,
                AccountToken.purpose == purpose,
                AccountToken.used_at.is_(None),
                AccountToken.expires_at > now,
            )
            .values(used_at=now)
            .returning(AccountToken)
            .execution_options(synchronize_session=False)
        )
    ).scalar_one_or_none()
    return row


async def use_all_of_user(session: AsyncSession, user_id: str, purpose: str, now: datetime) -> int:
    """Every live link of the person for `purpose` stops working (a new password makes old reset links void)."""
    result = await session.execute(
        update(AccountToken)
        .where(AccountToken.user_id == user_id, AccountToken.purpose == purpose, AccountToken.used_at.is_(None))
        .values(used_at=now)
    )
    return result.rowcount or 0  # type: ignore[attr-defined]  # DML runs to a CursorResult; execute() is typed Result


async def count_since(session: AsyncSession, user_id: str, purpose: str, since: datetime) -> int:
    """How many links of `purpose` were made for the person since `since` (the "send again" limit)."""
    return int(
        (
            await session.execute(
                select(func.count())
                .select_from(AccountToken)
                .where(
                    AccountToken.user_id == user_id,
                    AccountToken.purpose == purpose,
                    AccountToken.created_at >= since,
                )
            )
        ).scalar_one()
    )


async def latest_next_url(session: AsyncSession, user_id: str, purpose: str) -> str:
    """The `next_url` of the person's newest link for `purpose` ("" if none): a resent link leads to the same place."""
    found = await session.execute(
        select(AccountToken.next_url)
        .where(AccountToken.user_id == user_id, AccountToken.purpose == purpose)
        .order_by(AccountToken.created_at.desc())
        .limit(1)
    )
    return found.scalar_one_or_none() or ""


async def purge_expired(session: AsyncSession, before: datetime) -> int:
    """Drop links that expired before `before` (housekeeping); kept a while so the limits can count them."""
    result = await session.execute(delete(AccountToken).where(AccountToken.expires_at < before))
    return result.rowcount or 0  # type: ignore[attr-defined]  # DML runs to a CursorResult; execute() is typed Result
