"""Single-use email links (idp/store/account_tokens.py): used at most once even when two replicas race, never
after expiry, stored as SHA-256 only, and purged by housekeeping a day after they expire."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select

from idp.auth.tokens import new_opaque, sha256_hex
from idp.clock import FrozenClock
from idp.config import Settings
from idp.store import account_tokens as store
from idp.store.db import Database
from idp.store.models import AccountToken
from tests.conftest import Running
from tests.support.pages import make_user

RESET = "reset_password"


async def add(running: Running, user_id: str, email_norm: str, clock: FrozenClock, minutes: int = 30) -> str:
    token = new_opaque(32)
    async with running.idp.db.transaction() as session:
        await store.insert(
            session,
            AccountToken(
                token_hash=sha256_hex(token),
                purpose=RESET,
                user_id=user_id,
                email_norm=email_norm,
                next_url="",
                created_at=clock.now(),
                expires_at=clock.now() + timedelta(minutes=minutes),
            ),
        )
    return token


async def consume(db: Database, token: str, clock: FrozenClock, purpose: str = RESET) -> AccountToken | None:
    async with db.transaction() as session:
        return await store.consume(session, sha256_hex(token), purpose, clock.now())


async def test_used_once_for_its_purpose_only(running: Running, clock: FrozenClock) -> None:
    user = await make_user(running.idp)
    token = await add(running, user.id, user.email_norm, clock)
    assert await consume(running.idp.db, token, clock, purpose="verify_email") is None
    used = await consume(running.idp.db, token, clock)
    assert used is not None
    assert used.user_id == user.id
    assert await consume(running.idp.db, token, clock) is None
    async with running.idp.db.transaction() as session:
        [row] = (await session.execute(select(AccountToken))).scalars().all()
    assert row.token_hash == sha256_hex(token)
    assert token not in (row.token_hash, row.email_norm, row.next_url)


async def test_never_after_expiry(running: Running, clock: FrozenClock) -> None:
    user = await make_user(running.idp)
    token = await add(running, user.id, user.email_norm, clock)
    clock.advance(30 * 60)
    assert await consume(running.idp.db, token, clock) is None
    async with running.idp.db.transaction() as session:
        assert await store.find_live(session, sha256_hex(token), RESET, clock.now()) is None


async def test_two_replicas_racing_with_one_link_one_wins(
    running: Running, settings: Settings, clock: FrozenClock
) -> None:
    """Two engines (two replicas' pools) use the same link 16 times at once: exactly one use succeeds."""
    user = await make_user(running.idp)
    token = await add(running, user.id, user.email_norm, clock)
    other = Database(settings.database_url, pool_size=8)
    try:
        results = await asyncio.gather(
            *(consume(db, token, clock) for db in [running.idp.db, other] * 8), return_exceptions=True
        )
    finally:
        await other.dispose()
    winners = [r for r in results if isinstance(r, AccountToken)]
    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1
    # SQLite may refuse a writer outright ("database is locked") rather than wait: a refusal, never a second use.
    assert all("locked" in str(f) for f in failures), failures


async def test_use_all_of_user_and_purge(running: Running, clock: FrozenClock) -> None:
    user = await make_user(running.idp)
    first = await add(running, user.id, user.email_norm, clock)
    second = await add(running, user.id, user.email_norm, clock)
    async with running.idp.db.transaction() as session:
        assert await store.use_all_of_user(session, user.id, RESET, clock.now()) == 2
        assert await store.count_since(session, user.id, RESET, clock.now() - timedelta(hours=1)) == 2
    assert await consume(running.idp.db, first, clock) is None
    assert await consume(running.idp.db, second, clock) is None
    clock.advance(30 * 60 + 1)
    async with running.idp.db.transaction() as session:
        assert await running.idp.accounts.purge_expired(session) == 0  # kept a day for the limits
    clock.advance(86400)
    async with running.idp.db.transaction() as session:
        assert await running.idp.accounts.purge_expired(session) == 2
        assert (await session.execute(select(func.count()).select_from(AccountToken))).scalar_one() == 0


async def test_deleting_the_person_deletes_their_links(running: Running, clock: FrozenClock) -> None:
    user = await make_user(running.idp)
    await add(running, user.id, user.email_norm, clock)
    await running.idp.users.delete(user.id, actor="test", client_ip="")
    async with running.idp.db.transaction() as session:
        assert (await session.execute(select(func.count()).select_from(AccountToken))).scalar_one() == 0
