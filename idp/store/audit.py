"""SQL for the audit log: append-only from the application's side."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from idp.store.models import AuditEvent


async def insert_event(session: AsyncSession, values: dict[str, object]) -> None:
    await session.execute(insert(AuditEvent), [values])


async def insert_events(session: AsyncSession, rows: Sequence[dict[str, object]]) -> None:
    """Many events in one statement (an import batch)."""
    if rows:
        await session.execute(insert(AuditEvent), list(rows))


async def list_events(
    session: AsyncSession,
    *,
    user_id: str | None = None,
    type_: str | None = None,
    since: datetime | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> Sequence[AuditEvent]:
    """Newest first; `before_id` continues a previous page."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if user_id is not None:
        query = query.where(AuditEvent.user_id == user_id)
    if type_ is not None:
        query = query.where(AuditEvent.type == type_)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    return (await session.execute(query)).scalars().all()


async def delete_events_before(session: AsyncSession, before: datetime) -> int:
    """Retention only: the application never deletes an event otherwise."""
    result = await session.execute(delete(AuditEvent).where(AuditEvent.at < before))
    return result.rowcount or 0  # type: ignore[attr-defined]  # DML runs to a CursorResult; execute() is typed Result


async def forget_person(session: AsyncSession, user_id: str, personal_details: Sequence[str]) -> int:
    """The one change ever made to events: when an account is deleted, its events keep the user id and what
    happened, and lose the client address and the named free-text details (GDPR art. 17). Returns rows changed."""
    await session.execute(update(AuditEvent).where(AuditEvent.user_id == user_id).values(client_ip=""))
    rows = (await session.execute(select(AuditEvent.id, AuditEvent.details).where(AuditEvent.user_id == user_id))).all()
    changed = 0
    for event_id, details in rows:
        values = json.loads(details or "{}")
        personal = [name for name in personal_details if name in values]
        if personal:
            values.update(dict.fromkeys(personal, "(removed)"))
            encoded = json.dumps(values, sort_keys=True)
            await session.execute(update(AuditEvent).where(AuditEvent.id == event_id).values(details=encoded))
            changed += 1
    return changed
