"""Failure limits per account and per client address over a sliding window, shared by all replicas.

Only failures count. Past the limit nothing more is recorded, so an attacker cannot push the window forward:
the oldest failure ages out and the account opens again by itself.

An attempt is counted (reserved) and committed before it is checked, so a burst of concurrent guesses on any
number of replicas cannot all pass the check before the first failure is recorded: the n-th reservation to
commit sees at least n hits. A refused or successful attempt takes its reservation back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from idp.auth.tokens import sha256_hex
from idp.clock import Clock
from idp.errors import RateLimited
from idp.store import ratelimit as store


@dataclass(frozen=True)
class Limit:
    key: str
    maximum: int
    scope: str  # "account" or "address", for logs and audit


class RateLimiter:
    """Count failures in the database and refuse once a key has reached its maximum within the window."""

    def __init__(
        self, clock: Clock, *, window_seconds: int, per_account: int, per_address: int, admin_per_address: int = 20
    ) -> None:
        self._clock = clock
        self.window = timedelta(seconds=window_seconds)
        self.per_account = per_account
        self.per_address = per_address
        self.admin_per_address = admin_per_address

    def login_limits(self, email_norm: str, client_ip: str) -> list[Limit]:
        # The account key is a hash so that the table does not collect email addresses people mistyped.
        return [
            Limit("login:acct:" + sha256_hex(email_norm)[:40], self.per_account, "account"),
            Limit("login:addr:" + client_ip[:45], self.per_address, "address"),
        ]

    def admin_limits(self, client_ip: str) -> list[Limit]:
        """Failed admin-token presentations per address: the admin API's own limit."""
        return [Limit("admin:addr:" + client_ip[:45], self.admin_per_address, "admin")]

    async def check(self, session: AsyncSession, limits: list[Limit], *, reserved: bool = False) -> None:
        """Raise RateLimited (with the seconds until the window frees a slot) if any limit is reached.

        With `reserved`, the attempt being checked is already among the hits and may be the maximum-th.
        """
        now = self._clock.now()
        counts = await store.count_hits(session, [limit.key for limit in limits], now - self.window)
        for limit in limits:
            count, oldest = counts.get(limit.key, (0, now))
            if count - (1 if reserved else 0) >= limit.maximum:
                retry_after = (oldest + self.window - now).total_seconds()
                raise RateLimited(int(retry_after) + 1, limit.scope)

    async def record_failure(self, session: AsyncSession, limits: list[Limit]) -> list[int]:
        """Count one failure against every limit; returns the hits' ids, to `release` if it was no failure."""
        return await store.add_hits(session, [limit.key for limit in limits], self._clock.now())

    async def release(self, session: AsyncSession, hit_ids: list[int]) -> None:
        """Take back hits reserved by `record_failure` for an attempt that turned out not to be a failure."""
        await store.delete_hits(session, hit_ids)

    async def reset(self, session: AsyncSession, limit: Limit) -> None:
        await store.clear_hits(session, limit.key)

    async def purge(self, session: AsyncSession) -> int:
        """Drop hits older than the window (housekeeping)."""
        return await store.purge_hits(session, self._clock.now() - self.window)
