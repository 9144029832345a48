"""Writes audit events; refuses any detail whose name suggests a secret, so none is ever recorded."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from idp.clock import Clock
from idp.store import audit as store
from idp.store.db import Database
from idp.store.models import AuditEvent

_FORBIDDEN = ("password", "secret", "token", "code", "otp", "hash")


class AuditLog:
    """Append security-relevant events inside the caller's transaction, so they land with the change."""

    def __init__(self, clock: Clock, db: Database | None = None) -> None:
        self._clock = clock
        self._db = db

    async def record(
        self,
        session: AsyncSession,
        type_: str,
        *,
        user_id: str | None = None,
        actor: str = "",
        client_ip: str = "",
        outcome: str = "success",
        **details: Any,
    ) -> None:
        """Record `type_` (e.g. "login.success") with non-secret `details`."""
        await store.insert_event(
            session,
            self.event_row(type_, user_id=user_id, actor=actor, client_ip=client_ip, outcome=outcome, **details),
        )

    def event_row(
        self,
        type_: str,
        *,
        user_id: str | None = None,
        actor: str = "",
        client_ip: str = "",
        outcome: str = "success",
        **details: Any,
    ) -> dict[str, object]:
        """The row `record` writes, for a caller that writes it with other rows in one statement."""
        self._check(details)
        return {
            "at": self._clock.now(),
            "type": type_,
            "outcome": outcome,
            "actor": actor[:100],
            "user_id": user_id,
            "client_ip": client_ip[:45],
            "details": json.dumps(details, default=str, sort_keys=True),
        }

    async def record_many(
        self,
        session: AsyncSession,
        type_: str,
        user_ids: list[str],
        *,
        actor: str = "",
        client_ip: str = "",
        **details: Any,
    ) -> None:
        """One `type_` event per user in one statement (an import batch), each with the same non-secret details."""
        self._check(details)
        now = self._clock.now()
        encoded = json.dumps(details, default=str, sort_keys=True)
        rows: list[dict[str, object]] = [
            {
                "at": now,
                "type": type_,
                "outcome": "success",
                "actor": actor[:100],
                "user_id": user_id,
                "client_ip": client_ip[:45],
                "details": encoded,
            }
            for user_id in user_ids
        ]
        await store.insert_events(session, rows)

    @staticmethod
    def _check(details: dict[str, Any]) -> None:
        for name in details:
            if any(word in name.lower() for word in _FORBIDDEN):
                raise ValueError(f"audit detail {name!r} may hold a secret")

    async def list(
        self,
        *,
        user_id: str | None = None,
        type_: str | None = None,
        since: datetime | None = None,
        before_id: int | None = None,
        limit: int = 50,
    ) -> list[AuditEvent]:
        """Events newest first, filtered; `before_id` continues a previous page."""
        assert self._db is not None
        async with self._db.transaction() as session:
            return list(
                await store.list_events(
                    session, user_id=user_id, type_=type_, since=since, before_id=before_id, limit=limit
                )
            )

    async def purge_older_than(self, days: int) -> int:
        """Retention: delete events older than `days` (the only deletion the application ever makes)."""
        assert self._db is not None
        async with self._db.transaction() as session:
            return await store.delete_events_before(session, self._clock.now() - timedelta(days=days))
