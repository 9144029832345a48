"""Sign-in continuation markers are spent once on every replica, and housekeeping forgets expired ones."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from idp.clock import FrozenClock
from idp.store.models import UsedMarker
from tests.conftest import Running


async def used_rows(running: Running) -> int:
    async with running.idp.db.transaction() as session:
        return (await session.execute(select(func.count()).select_from(UsedMarker))).scalar_one()  # type: ignore[no-any-return]


async def test_a_marker_is_spent_once_and_purged_after_it_expires(running: Running, clock: FrozenClock) -> None:
    grants = running.idp.grants.codes
    expires_at = clock.now() + timedelta(hours=1)

    assert await grants.use_marker("1.a.b", expires_at=expires_at) is True
    assert await grants.use_marker("1.a.b", expires_at=expires_at) is False
    assert await grants.use_marker("1.a.c", expires_at=expires_at) is True

    await running.idp.grants.purge_expired()
    assert await used_rows(running) == 2
    clock.advance(3601)
    await running.idp.grants.purge_expired()
    assert await used_rows(running) == 0
