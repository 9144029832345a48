"""Audit retention: events older than IDP_AUDIT_RETENTION_DAYS are purged, newer ones kept."""

from __future__ import annotations

from sqlalchemy import select

from idp.clock import FrozenClock
from idp.store.models import AuditEvent
from tests.conftest import Running


async def test_purge_keeps_events_inside_the_retention(running: Running, clock: FrozenClock) -> None:
    audit = running.idp.audit
    async with running.idp.db.transaction() as session:
        await audit.record(session, "login.success", user_id="old")
    clock.advance(10 * 86400)
    async with running.idp.db.transaction() as session:
        await audit.record(session, "login.success", user_id="new")

    purged = await audit.purge_older_than(5)

    assert purged == 1
    async with running.idp.db.transaction() as session:
        left = (await session.execute(select(AuditEvent.user_id))).scalars().all()
    assert left == ["new"]
