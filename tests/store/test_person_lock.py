"""Transactions that change a person's account take the person's row first (`users.lock_person`), on a real
PostgreSQL: two reset links of one person used at once queue one behind the other instead of deadlocking, and the
lock still lets rows that refer to the person be inserted (FOR NO KEY UPDATE, not FOR UPDATE)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from idp.store import account_tokens as store
from idp.store import users as users_store
from idp.store.db import Database
from idp.store.models import AccountToken, User

RESET = "reset_password"
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
Consume = Callable[[AsyncSession, str], Awaitable[AccountToken | None]]


@pytest.fixture
async def db(postgres_database: str) -> AsyncIterator[Database]:
    database = Database(postgres_database, hot=False)
    yield database
    await database.dispose()


async def person_with_links(db: Database, count: int) -> tuple[str, list[str]]:
    """A new person and the hashes of `count` live reset links of theirs."""
    user_id = str(uuid.uuid4())
    email = f"{user_id}@example.com"
    hashes = [uuid.uuid4().hex for _ in range(count)]
    async with db.transaction() as session:
        await users_store.insert_user(
            session, User(id=user_id, email=email, email_norm=email, created_at=NOW, updated_at=NOW)
        )
        for token_hash in hashes:
            await store.insert(
                session,
                AccountToken(
                    token_hash=token_hash,
                    purpose=RESET,
                    user_id=user_id,
                    email_norm=email,
                    created_at=NOW,
                    expires_at=NOW + timedelta(hours=1),
                ),
            )
    return user_id, hashes


async def consume(session: AsyncSession, token_hash: str) -> AccountToken | None:
    return await store.consume(session, token_hash, RESET, NOW)


async def consume_without_the_person(session: AsyncSession, token_hash: str) -> AccountToken | None:
    """The link's conditional UPDATE alone, as `consume` was before it locked the person."""
    query = (
        update(AccountToken)
        .where(AccountToken.token_hash == token_hash, AccountToken.used_at.is_(None))
        .values(used_at=NOW)
        .returning(AccountToken)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def two_resets(db: Database, consume: Consume) -> AccountToken | None:
    """A uses its link; B uses the person's other link; A makes every link of the person void (as a reset does)
    and commits. Returns what B's link gave it."""
    user_id, (first, second) = await person_with_links(db, 2)
    async with db.sessions() as a, a.begin():
        await a.execute(text("SET LOCAL deadlock_timeout = '200ms'"))
        assert await consume(a, first) is not None

        async def other() -> AccountToken | None:
            async with db.sessions() as b, b.begin():
                await b.execute(text("SET LOCAL deadlock_timeout = '200ms'"))
                row = await consume(b, second)
                if row is not None:
                    await store.use_all_of_user(b, user_id, RESET, NOW)
                return row

        b_task = asyncio.ensure_future(other())
        await asyncio.sleep(0.3)
        assert not b_task.done()  # B waits: for the person's row, or (the control) for A's link further on
        try:
            await asyncio.wait_for(store.use_all_of_user(a, user_id, RESET, NOW), 5)
        except BaseException:
            b_task.cancel()
            await asyncio.gather(b_task, return_exceptions=True)
            raise
    return await asyncio.wait_for(b_task, 5)


async def test_two_links_of_one_person_used_at_once_queue_and_the_second_finds_its_link_void(db: Database) -> None:
    # B waited at the person's row holding nothing; once A committed, its link was one of those A made void.
    assert await two_resets(db, consume) is None


async def test_without_the_person_first_the_same_two_resets_deadlock(db: Database) -> None:
    # The control: each locks its own link, then waits for the other's, so the setup above tests something.
    with pytest.raises(DBAPIError, match="deadlock detected"):
        await two_resets(db, consume_without_the_person)


async def test_the_person_held_still_lets_rows_that_refer_to_them_be_inserted(db: Database) -> None:
    user_id, _ = await person_with_links(db, 0)
    async with db.sessions() as a, a.begin():
        assert (await users_store.lock_person(a, user_id)) is not None
        # A foreign key check takes FOR KEY SHARE on the person: FOR UPDATE would make this insert wait.
        async with db.sessions() as b, b.begin():
            await b.execute(text("SET LOCAL lock_timeout = '2s'"))
            await store.insert(
                b,
                AccountToken(
                    token_hash=uuid.uuid4().hex,
                    purpose=RESET,
                    user_id=user_id,
                    email_norm="x@example.com",
                    created_at=NOW,
                    expires_at=NOW + timedelta(hours=1),
                ),
            )
