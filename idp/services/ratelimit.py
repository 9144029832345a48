"""Failure limits per account and per client address over a sliding window, shared by all replicas (INTERFACE §4).

Only failures count. Past the limit nothing more is recorded, so an attacker cannot push the window forward:
the oldest failure ages out and the account opens again by itself.

An attempt is counted (reserved) and committed before it is checked, so a burst of concurrent guesses on any
number of replicas cannot all pass the check before the first failure is recorded: the n-th reservation to
commit sees at least n hits. A refused or successful attempt takes its reservation back.

A stranger must not lock a person out of their own account: attempts from a browser that has signed in to the
account before (a known device) are counted under a key of their own, and wrong codes while setting up an
authenticator count under the enrollment's key, not the sign-in's.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession

from idp.auth.tokens import hmac_hex, new_opaque, sha256_hex
from idp.clock import Clock
from idp.errors import RateLimited
from idp.store import ratelimit as store
from idp.store.db import Database
from idp.store.models import User

# A reserved attempt waits at most this long for the attempts before it to turn out, polling at this pace.
MAX_WAIT_SECONDS = 10.0
POLL_SECONDS = 0.05
# A reservation neither settled nor taken back after this long was abandoned (its replica died): a failure.
ABANDONED = timedelta(seconds=60)
# A device cookie lives this long; each sign-in on the browser renews it.
DEVICE_COOKIE_SECONDS = 400 * 24 * 3600


@dataclass(frozen=True)
class Limit:
    key: str
    maximum: int
    scope: str  # "account", "address", "device", "enrollment" or "admin", for logs and audit


def address_key(client_ip: str) -> str:
    """The address as counted: IPv4 per address, IPv6 per /64 (one subscriber's whole prefix), IPv4-mapped as IPv4."""
    try:
        address = ipaddress.ip_address(client_ip.split("%", 1)[0])
    except ValueError:
        return client_ip[:45]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(address) >> 64 << 64, 64)))
    return str(address)


def plausible_device(value: str | None) -> bool:
    """Whether a device cookie looks like one we issue (anything else is ignored, and the browser a stranger)."""
    return value is not None and 32 <= len(value) <= 64 and value.replace("-", "").replace("_", "").isalnum()


class RateLimiter:
    """Count failures in the database and refuse once a key has reached its maximum within the window."""

    def __init__(
        self,
        clock: Clock,
        *,
        window_seconds: int,
        per_account: int,
        per_address: int,
        admin_per_address: int = 20,
        device_key: bytes,
    ) -> None:
        self._clock = clock
        self.window = timedelta(seconds=window_seconds)
        self.per_account = per_account
        self.per_address = per_address
        self.admin_per_address = admin_per_address
        self._device_key = device_key

    def login_limits(self, email_norm: str, client_ip: str) -> list[Limit]:
        """A stranger's limits: the account, shared by everyone without a known device, and the address."""
        # The account key is a hash so that the table does not collect email addresses people mistyped.
        return [
            Limit(account_key(email_norm), self.per_account, "account"),
            Limit("login:addr:" + address_key(client_ip), self.per_address, "address"),
        ]

    async def sign_in_limits(
        self, session: AsyncSession, email_norm: str, user: User | None, client_ip: str, device: str | None
    ) -> list[Limit]:
        """The limits of a sign-in attempt: a known device's own counter, or the stranger's limits."""
        if user is not None and device is not None and plausible_device(device):
            bond = self.device_hash(device, user.id)
            if await store.is_known_device(session, bond):
                return [Limit(device_limit_key(bond), self.per_account, "device")]
        return self.login_limits(email_norm, client_ip)

    def enrollment_limits(self, user_id: str) -> list[Limit]:
        """Wrong codes while setting up an authenticator: their own counter, never the sign-in's."""
        return [Limit("enroll:acct:" + sha256_hex(user_id)[:40], self.per_account, "enrollment")]

    def admin_limits(self, client_ip: str) -> list[Limit]:
        """Failed admin-token presentations per address: the admin API's own limit."""
        return [Limit("admin:addr:" + address_key(client_ip), self.admin_per_address, "admin")]

    def device_hash(self, device: str, user_id: str) -> str:
        """The keyed hash under which a (device, account) pair is known; the cookie itself is never stored."""
        return hmac_hex(self._device_key, "device", device, user_id)

    def device_of(self, device: str | None, user_id: str) -> tuple[str, str]:
        """The browser's device cookie (a new one if it had none or a forged one) and its keyed hash for `user_id`."""
        kept = device if device is not None and plausible_device(device) else new_opaque(32)
        return kept, self.device_hash(kept, user_id)

    async def check(self, session: AsyncSession, limits: list[Limit]) -> None:
        """Raise RateLimited (with the seconds until the window frees a slot) if any limit is reached, counting
        attempts still being checked as failures (for a caller that reserved nothing)."""
        now = self._clock.now()
        counts = await store.count_hits(session, [limit.key for limit in limits], now - self.window)
        for limit in limits:
            count = counts.get(limit.key)
            if count is not None and count.counted >= limit.maximum:
                raise RateLimited(self._retry_after(count.oldest, now), limit.scope)

    async def admit(self, db: Database, limits: list[Limit], reserved: list[int]) -> None:
        """Wait for the turn of an attempt reserved by `record_failure`; raise RateLimited once failures fill a limit.

        The n-th reservation goes ahead when the failures plus the attempts before it still being checked leave
        room; otherwise it waits for those to turn out (a right password takes its reservation back, a wrong one
        becomes a failure). So a burst of guesses gets no more tries than the limit, and a burst of right
        passwords all get in.
        """
        deadline = time.monotonic() + MAX_WAIT_SECONDS
        upto = max(reserved) if reserved else None
        keys = [limit.key for limit in limits]
        while True:
            now = self._clock.now()
            # One SELECT: read outside a transaction (no BEGIN/COMMIT round trips, no SQLite write lock); it sees
            # every reservation committed before it, as it would inside one.
            counts = await db.read(partial(_count_admitted, keys=keys, since=now - self.window, upto=upto, now=now))
            waiting: RateLimited | None = None
            for limit in limits:
                count = counts.get(limit.key)
                if count is None or count.counted - 1 < limit.maximum:  # this attempt is among `counted`
                    continue
                refused = RateLimited(self._retry_after(count.oldest, now), limit.scope)
                if count.failed >= limit.maximum or time.monotonic() >= deadline:
                    raise refused
                waiting = refused
            if waiting is None:
                return
            await asyncio.sleep(POLL_SECONDS)

    def _retry_after(self, oldest: datetime, now: datetime) -> int:
        return int((oldest + self.window - now).total_seconds()) + 1

    async def record_failure(self, session: AsyncSession, limits: list[Limit]) -> list[int]:
        """Count one failure against every limit; returns the hits' ids, to `release` if it was no failure."""
        return await store.add_hits(session, [limit.key for limit in limits], self._clock.now())

    async def settle(self, session: AsyncSession, hit_ids: list[int]) -> None:
        """The reserved attempt failed: its hits become failures (reservations that never settle count after a
        while too, so a replica dying mid-attempt leaves nothing uncounted)."""
        await store.settle_hits(session, hit_ids)

    async def release(self, session: AsyncSession, hit_ids: list[int]) -> None:
        """Take back hits reserved by `record_failure` for an attempt that turned out not to be a failure (a
        successful sign-in does this and clears the account's failures in its last statement, store.hot)."""
        await store.delete_hits(session, hit_ids)

    async def reset(self, session: AsyncSession, limit: Limit) -> None:
        await store.clear_hits(session, [limit.key])

    async def unlock(self, session: AsyncSession, user: User) -> int:
        """Clear every attempt limit on the account (stranger, device-bound, enrollment); how many hits went."""
        keys = [account_key(user.email_norm), self.enrollment_limits(user.id)[0].key]
        keys += [device_limit_key(bond) for bond in await store.known_devices_of(session, user.id)]
        return await store.clear_hits(session, keys)

    async def purge(self, session: AsyncSession) -> int:
        """Drop hits older than the window (housekeeping)."""
        return await store.purge_hits(session, self._clock.now() - self.window)


async def _count_admitted(
    session: AsyncSession, *, keys: list[str], since: datetime, upto: int | None, now: datetime
) -> dict[str, store.HitCount]:
    return await store.count_hits(session, keys, since, upto_id=upto, abandoned_before=now - ABANDONED)


def account_key(email_norm: str) -> str:
    return "login:acct:" + sha256_hex(email_norm)[:40]


def device_limit_key(bond: str) -> str:
    return "login:dev:" + bond[:40]
