"""The audit log for operators, newest first."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from idp.admin.api import ApiError, Call, decode_cursor, encode_cursor, operation
from idp.admin.schemas import AuditEventOut, AuditPage, AuditQuery


@operation("GET", "/audit", summary="Audit events, newest first", query=AuditQuery, response=AuditPage)
async def list_audit(call: Call) -> AuditPage:
    query: AuditQuery = call.query
    cursor = decode_cursor(query.cursor)
    # Event ids are 64-bit: more than 18 digits was never given out, and would overflow the database's integer.
    if cursor is not None and not (cursor.isdigit() and len(cursor) <= 18):
        raise ApiError(400, "invalid_request", "cursor is not one this API gave out")
    events = await call.idp.audit.list(
        user_id=query.user_id,
        type_=query.type,
        since=_utc(query.since),
        before_id=int(cursor) if cursor else None,
        limit=query.limit + 1,
    )
    page = events[: query.limit]
    return AuditPage(
        items=[
            AuditEventOut(
                id=e.id,
                at=e.at,
                type=e.type,
                outcome=e.outcome,
                actor=e.actor,
                user_id=e.user_id,
                client_ip=e.client_ip,
                details=json.loads(e.details),
            )
            for e in page
        ],
        next_cursor=encode_cursor(page[-1].id) if len(events) > query.limit else None,
    )


def _utc(since: datetime | None) -> datetime | None:
    """`since` in UTC; an offset that pushes it past year 1 or 9999 clamps to the end it points at."""
    if since is None:
        return None
    try:
        return since.astimezone(UTC)
    except OverflowError:
        # 0001-01-01T00:00:00+01:00 is before every event; 9999-12-31T23:59:59-01:00 after every one.
        return datetime.min.replace(tzinfo=UTC) if since.year == 1 else datetime.max.replace(tzinfo=UTC)
