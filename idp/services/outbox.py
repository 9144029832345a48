"""The durable outbox: messages kept in the database, delivered by any replica, retried with back-off, given up
after a while with an audit entry. One mechanism for every kind (back-channel logout tokens; email later)."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import partial
from typing import Any

from idp.clock import Clock
from idp.ops.metrics import Metrics
from idp.services.audit import AuditLog
from idp.store import outbox as store
from idp.store.db import Database
from idp.store.models import OutboxMessage

log = logging.getLogger(__name__)

# Back-off after the n-th failed try: BASE * 2**(n-1), at most CAP, times a random factor in [½, 1] so that the
# messages of one outage do not all come back at the same moment ("equal jitter").
BACKOFF_BASE = timedelta(seconds=5)
BACKOFF_CAP = timedelta(hours=1)
BATCH = 20
# A claimed message is left alone this long beyond its delivery time-out; if the replica died meanwhile it is due again.
LEASE_MARGIN = timedelta(seconds=30)


class DeliveryFailed(Exception):
    """A try that did not deliver; the message says why in words safe for a log (never a token)."""


Deliver = Callable[[dict[str, Any]], Awaitable[None]]
# What of a payload the give-up audit entry may carry: identifiers, never a secret.
Describe = Callable[[dict[str, Any]], dict[str, Any]]


def backoff(attempts: int, rng: random.Random) -> timedelta:
    """How long to wait after the `attempts`-th failed try."""
    # Annotated: `2 ** int` is typed Any (a negative exponent would make a float).
    ceiling: timedelta = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** min(max(attempts - 1, 0), 20))
    return ceiling * rng.uniform(0.5, 1.0)


class Outbox:
    """Delivers due messages with the handler registered for their kind."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        audit: AuditLog,
        metrics: Metrics,
        *,
        give_up_after: timedelta,
        attempt_timeout: timedelta,
        rng: random.Random | None = None,
    ) -> None:
        self.db = db
        self._clock = clock
        self._audit = audit
        self._metrics = metrics
        self._give_up_after = give_up_after
        self._lease = attempt_timeout + LEASE_MARGIN
        self._rng = rng or random.SystemRandom()
        self._handlers: dict[str, tuple[Deliver, Describe]] = {}

    def register(self, kind: str, deliver: Deliver, describe: Describe) -> None:
        self._handlers[kind] = (deliver, describe)
        self._metrics.outbox_kinds([kind])

    async def run_once(self) -> int:
        """Claim the due messages and try each once; returns how many were tried."""
        now = self._clock.now()
        # An idle poll is one read: on SQLite a claim takes the write lock, which an idle replica has no reason to
        # queue for every second.
        if not await self.db.read(partial(store.any_due, now=now)):
            return 0
        # One UPDATE ... RETURNING, atomic by itself: no transaction around it, so SQLite's write lock is held for
        # that statement only (an operator command never waits on a poll that its process paused mid-transaction).
        claimed = list(await self.db.write_one(lambda session: store.claim_due(session, now, now + self._lease, BATCH)))
        await asyncio.gather(*(self._try(message) for message in claimed))
        return len(claimed)

    async def _try(self, message: OutboxMessage) -> None:
        handler = self._handlers.get(message.kind)
        payload: dict[str, Any] = json.loads(message.payload)
        try:
            if handler is None:
                raise DeliveryFailed(f"no handler for {message.kind[:40]}")
            await handler[0](payload)
        except Exception as exc:
            reason = str(exc) if isinstance(exc, DeliveryFailed) else type(exc).__name__
            await self._failed(message, payload, reason[:200])
            return
        async with self.db.transaction() as session:
            await store.delete_message(session, message.id)
        self._metrics.outbox_sent.labels(message.kind).inc()

    async def _failed(self, message: OutboxMessage, payload: dict[str, Any], reason: str) -> None:
        self._metrics.outbox_failed.labels(message.kind).inc()
        now = self._clock.now()
        handler = self._handlers.get(message.kind)
        details = handler[1](payload) if handler else {}
        async with self.db.transaction() as session:
            if now - message.created_at >= self._give_up_after:
                await store.delete_message(session, message.id)
                await self._audit.record(
                    session,
                    "outbox.given_up",
                    outcome="failure",
                    user_id=details.pop("user_id", None),
                    kind=message.kind,
                    attempts=message.attempts,
                    reason=reason,
                    **details,
                )
                self._metrics.outbox_given_up.labels(message.kind).inc()
                log.warning(
                    "outbox message %s (%s) given up after %s tries", message.id, message.kind, message.attempts
                )
                return
            await store.reschedule(session, message.id, now + backoff(message.attempts, self._rng), reason)
        log.info("outbox message %s (%s) try %s failed: %s", message.id, message.kind, message.attempts, reason)

    async def refresh_queue_metric(self) -> None:
        counts = await self.db.read(store.count_by_kind)
        for kind in self._handlers:
            self._metrics.outbox_queued.labels(kind).set(counts.get(kind, 0))

    async def run_forever(self, poll_seconds: float) -> None:
        """The lifespan task: wait, then deliver what is due; a full batch is followed at once by the next."""
        tried = 0
        while True:
            if tried < BATCH:
                await asyncio.sleep(poll_seconds)
            try:
                tried = await self.run_once()
                await self.refresh_queue_metric()
            except Exception:
                tried = 0
                log.exception("outbox delivery failed; will retry")
