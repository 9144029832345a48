"""The instance's secret and encryption keys: from settings, or generated once and shared through the database."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from idp.auth.tokens import new_opaque
from idp.clock import Clock
from idp.config import Settings
from idp.store.db import Database
from idp.store.instance import find_secret, get_or_create_secret


@dataclass(frozen=True)
class InstanceKeys:
    secret_key: str
    encryption_key: str


async def load_instance_keys(db: Database, settings: Settings, clock: Clock) -> InstanceKeys:
    """Keys set in the environment win; otherwise the first replica's generated keys are used by all."""
    values: dict[str, str] = {}
    for name in ("secret_key", "encryption_key"):
        configured = getattr(settings, name)
        if configured is not None:
            values[name] = configured.get_secret_value()
            continue
        # Read first, outside a transaction: every start after the first is then a pure read, so an operator
        # command never waits on (or times out behind) another process's SQLite write lock just to start.
        kept = await db.read(partial(find_secret, name=name))
        if kept is None:
            async with db.transaction() as session:
                kept = await get_or_create_secret(session, name, new_opaque(48), clock.now())
        values[name] = kept
    return InstanceKeys(**values)
