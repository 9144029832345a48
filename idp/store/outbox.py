"""SQL for the durable outbox: enqueue once per (kind, dedupe key), claim due rows on any replica, settle them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, union, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from idp.store.models import AuthorizationCode, Client, OutboxMessage, Token


async def enqueue(session: AsyncSession, rows: Sequence[dict[str, object]]) -> int:
    """Insert messages, skipping any whose (kind, dedupe_key) is already queued; returns how many were new."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    # The rows as parameters (one multi-row INSERT, compiled once and cached), not built into the statement.
    statement = (
        insert(OutboxMessage).on_conflict_do_nothing(index_elements=["kind", "dedupe_key"]).returning(OutboxMessage.id)
    )
    result = await session.execute(statement, list(rows))
    return len(result.all())


async def any_due(session: AsyncSession, now: datetime) -> bool:
    """Whether a message is due: one indexed probe, cheap enough for every poll."""
    found = await session.scalar(select(OutboxMessage.id).where(OutboxMessage.next_attempt_at <= now).limit(1))
    return found is not None


async def claim_due(session: AsyncSession, now: datetime, lease_until: datetime, limit: int) -> Sequence[OutboxMessage]:
    """Take up to `limit` due messages for this replica: one UPDATE moves them to `lease_until` and counts the try.

    PostgreSQL skips rows another replica has locked (FOR UPDATE SKIP LOCKED); SQLite has one writer at a time,
    so the UPDATE's own condition is the claim. A sender that dies leaves its rows due again at `lease_until`."""
    due = (
        select(OutboxMessage.id)
        .where(OutboxMessage.next_attempt_at <= now)
        .order_by(OutboxMessage.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(due.scalar_subquery()), OutboxMessage.next_attempt_at <= now)
        .values(next_attempt_at=lease_until, attempts=OutboxMessage.attempts + 1)
        .returning(OutboxMessage)
        .execution_options(synchronize_session=False)
    )
    return result.scalars().all()


async def delete_message(session: AsyncSession, message_id: int) -> None:
    await session.execute(delete(OutboxMessage).where(OutboxMessage.id == message_id))


async def reschedule(session: AsyncSession, message_id: int, next_attempt_at: datetime, error: str) -> None:
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .values(next_attempt_at=next_attempt_at, last_error=error[:200])
    )


async def count_by_kind(session: AsyncSession) -> dict[str, int]:
    """Messages waiting per kind (the queue depth metric)."""
    rows = await session.execute(select(OutboxMessage.kind, func.count()).group_by(OutboxMessage.kind))
    return {kind: count for kind, count in rows.all()}


def _issued_in(sids: Sequence[str]) -> Any:
    """(client_id, user_id, sid) of the codes and tokens issued in the sessions `sids` (indexed by sid)."""
    return union(
        select(Token.client_id, Token.user_id, Token.sid).where(Token.sid.in_(sids), Token.user_id.is_not(None)),
        select(AuthorizationCode.client_id, AuthorizationCode.user_id, AuthorizationCode.sid).where(
            AuthorizationCode.sid.in_(sids)
        ),
    ).subquery()


async def clients_of_sessions(session: AsyncSession, sids: Sequence[str]) -> Sequence[tuple[str, str, str]]:
    """(client_id, user_id, sid) for every client with a back-channel logout URI that got a code or tokens in one
    of the sessions `sids`."""
    if not sids:
        return []
    issued = _issued_in(sids)
    rows = await session.execute(
        select(issued.c.client_id, issued.c.user_id, issued.c.sid)
        .join(Client, Client.client_id == issued.c.client_id)
        .where(Client.backchannel_logout_uri != "")
    )
    return [(r[0], r[1], r[2]) for r in rows.all()]


async def client_names_of_session(session: AsyncSession, sid: str) -> Sequence[tuple[str, bool]]:
    """(name, has a back-channel logout URI) of each client signed in through the session `sid`, by name."""
    issued = _issued_in([sid])
    rows = await session.execute(
        select(Client.name, Client.backchannel_logout_uri != "")
        .where(Client.client_id.in_(select(issued.c.client_id)))
        .order_by(Client.name)
    )
    return [(r[0], bool(r[1])) for r in rows.all()]


async def delete_emails_of_user(session: AsyncSession, user_id: str) -> int:
    """Drop emails still queued for a person whose account is being deleted (their sealed address goes with them).

    The payload is compact JSON written by idp.services.mail, so the user id appears exactly like this."""
    pattern = '%"user_id":"' + user_id.replace("%", "").replace("_", "\\_") + '"%'
    result = await session.execute(
        delete(OutboxMessage).where(OutboxMessage.kind == "email", OutboxMessage.payload.like(pattern, escape="\\"))
    )
    return result.rowcount or 0  # type: ignore[attr-defined]  # DML runs to a CursorResult; execute() is typed Result
