"""Writes audit events; refuses any detail whose name suggests a secret, so none is ever recorded."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from idp.clock import Clock
from idp.store import audit as store

_FORBIDDEN = ("password", "secret", "token", "code", "otp", "hash")


class AuditLog:
    """Append security-relevant events inside the caller's transaction, so they land with the change."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

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
        for name in details:
            if any(word in name.lower() for word in _FORBIDDEN):
                raise ValueError(f"audit detail {name!r} may hold a secret")
        await store.insert_event(
            session,
            {
                "at": self._clock.now(),
                "type": type_,
                "outcome": outcome,
                "actor": actor[:100],
                "user_id": user_id,
                "client_ip": client_ip[:45],
                "details": json.dumps(details, default=str, sort_keys=True),
            },
        )
