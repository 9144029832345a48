"""Row counts of idp's tables, for asserting that a refused request wrote nothing."""

from __future__ import annotations

from sqlalchemy import func, select

from idp.store.models import AuditEvent, InstanceSecret, LoginSession, RateLimitHit, User
from tests.conftest import Running

MODELS = {
    "users": User,
    "login_sessions": LoginSession,
    "audit_events": AuditEvent,
    "ratelimit_hits": RateLimitHit,
    "instance_secrets": InstanceSecret,
}


async def row_counts(running: Running) -> dict[str, int]:
    """How many rows each table holds right now."""
    counts: dict[str, int] = {}
    async with running.idp.db.transaction() as session:
        for name, model in MODELS.items():
            counts[name] = (await session.execute(select(func.count()).select_from(model))).scalar_one()
    return counts
