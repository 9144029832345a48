"""argon2id password hashing (RFC 9106) in a bounded thread pool, so the event loop never does the work.

The pool refuses work past `workers + queue` jobs in flight (Overloaded), so a burst of sign-ins gets a fast
503 instead of piling up behind the CPU.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from idp.auth import legacy_hashes
from idp.errors import Overloaded

T = TypeVar("T")

# Long enough for any passphrase; shorter than anything that would make hashing a denial of service.
MAX_PASSWORD_LENGTH = 1024
# How much nicer (in Linux nice steps) the hashing threads run than the event loop. When both want one core the loop
# goes first, so a burst of sign-ins does not hold up every other request (loop lag p99 under sign-in load 5 to 7 ms
# at 0, about 4 at 5, with the same sign-in rate, bench/README.md); when the loop is idle the hash has the core.
HASH_NICENESS = 5


def _lower_priority(niceness: int) -> None:
    # Linux gives each thread its own nice value; elsewhere the threads keep the process's priority.
    if niceness and hasattr(os, "setpriority"):
        try:
            thread = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, thread, os.getpriority(os.PRIO_PROCESS, thread) + niceness)
        except OSError:
            pass


class PasswordPool:
    """Hash and verify passwords off the event loop, with back-pressure."""

    def __init__(
        self,
        *,
        memory_kib: int,
        time_cost: int,
        parallelism: int,
        workers: int,
        queue: int,
        niceness: int = HASH_NICENESS,
    ) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )
        self._executor = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="argon2", initializer=_lower_priority, initargs=(niceness,)
        )
        self._capacity = workers + queue
        self.workers = workers
        self._in_flight = 0
        # A real hash at the configured cost: verifying against it makes an unknown email cost what a wrong
        # password costs, so timing reveals nothing about which emails exist.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(24))

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def queued(self) -> int:
        """Jobs waiting for a worker (the queue length exported as a metric)."""
        return max(0, self._in_flight - self.workers)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._in_flight >= self._capacity:
            raise Overloaded("password pool is full")
        self._in_flight += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, fn, *args)
        finally:
            self._in_flight -= 1

    async def hash(self, password: str) -> str:
        """Return an argon2id hash of `password` at the configured cost."""
        return await self._run(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """True when `password` matches; a missing hash costs the same as a mismatch."""
        return await self._run(self._verify_sync, password_hash or self._dummy_hash, password, password_hash)

    async def verify_legacy(self, hashes: Sequence[str], password: str) -> int | None:
        """The index of the imported job-board hash `password` matches (idp.auth.legacy_hashes), or None; in this
        same bounded pool, so imported accounts cannot load the CPU past it."""
        return await self._run(legacy_hashes.first_match, list(hashes), password)

    def _verify_sync(self, password_hash: str, password: str, real: str | None) -> bool:
        try:
            ok = self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return ok and real is not None

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made at another cost than the configured one."""
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
