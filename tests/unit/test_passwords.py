"""PasswordPool: argon2id hashing and verification off the loop, rehash detection, the dummy hash, back-pressure."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from idp.auth.passwords import HASH_NICENESS, PasswordPool
from idp.errors import Overloaded


def make_pool(memory_kib: int = 1024, time_cost: int = 1, workers: int = 2, queue: int = 4) -> PasswordPool:
    return PasswordPool(memory_kib=memory_kib, time_cost=time_cost, parallelism=1, workers=workers, queue=queue)


@pytest.fixture
def pool() -> Iterator[PasswordPool]:
    made = make_pool()
    yield made
    made.shutdown()


async def test_hash_is_argon2id_at_the_configured_cost(pool: PasswordPool) -> None:
    hashed = await pool.hash("correct horse battery staple")
    assert hashed.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    assert "correct horse" not in hashed
    assert await pool.hash("correct horse battery staple") != hashed  # salted


async def test_verify_accepts_the_password_and_nothing_else(pool: PasswordPool) -> None:
    hashed = await pool.hash("correct horse battery staple")
    assert await pool.verify(hashed, "correct horse battery staple") is True
    assert await pool.verify(hashed, "correct horse battery stapl") is False
    assert await pool.verify(hashed, "Correct horse battery staple") is False
    assert await pool.verify(hashed, "") is False


async def test_verify_handles_unicode_passwords(pool: PasswordPool) -> None:
    hashed = await pool.hash("blåbærsyltetøy 🔑")
    assert await pool.verify(hashed, "blåbærsyltetøy 🔑") is True
    assert await pool.verify(hashed, "blabaersyltetoy 🔑") is False


async def test_a_missing_hash_never_verifies(pool: PasswordPool) -> None:
    assert await pool.verify(None, "anything") is False
    assert await pool.verify(None, "") is False
    assert await pool.verify("", "anything") is False


async def test_a_malformed_hash_is_a_mismatch_not_an_error(pool: PasswordPool) -> None:
    assert await pool.verify("not a hash", "anything") is False
    assert await pool.verify("$argon2id$v=19$m=1024,t=1,p=1$broken", "anything") is False


async def test_needs_rehash_follows_the_configured_cost(pool: PasswordPool) -> None:
    current = await pool.hash("a password here")
    assert pool.needs_rehash(current) is False
    dearer = make_pool(memory_kib=2048, time_cost=2)
    try:
        assert dearer.needs_rehash(current) is True
        rehashed = await dearer.hash("a password here")
        assert dearer.needs_rehash(rehashed) is False
        assert pool.needs_rehash(rehashed) is True
        # An old hash still verifies under the new cost: the parameters travel in the hash.
        assert await dearer.verify(current, "a password here") is True
    finally:
        dearer.shutdown()
    assert pool.needs_rehash("not a hash") is True


async def test_hashes_from_another_argon2_library_user_verify(pool: PasswordPool) -> None:
    foreign = PasswordHasher(memory_cost=1024, time_cost=1, parallelism=1).hash("shared password")
    assert await pool.verify(foreign, "shared password") is True


async def test_the_dummy_hash_costs_a_real_verification() -> None:
    pool = make_pool(memory_kib=8192, time_cost=2)
    try:
        loop = asyncio.get_running_loop()
        hashed = await pool.hash("a password here")
        started = loop.time()
        for _ in range(5):
            await pool.verify(hashed, "wrong")
        real = loop.time() - started
        started = loop.time()
        for _ in range(5):
            await pool.verify(None, "wrong")
        dummy = loop.time() - started
        assert dummy > 0.4 * real
    finally:
        pool.shutdown()


async def test_a_full_pool_refuses_fast() -> None:
    pool = make_pool(memory_kib=19456, time_cost=2, workers=1, queue=1)
    try:
        hashed = await pool.hash("a password here")
        results = await asyncio.gather(
            *(pool.verify(hashed, "a password here") for _ in range(6)), return_exceptions=True
        )
        assert sum(result is True for result in results) == 2  # one working, one queued
        assert sum(isinstance(result, Overloaded) for result in results) == 4
        assert pool.in_flight == 0
        assert pool.queued == 0
    finally:
        pool.shutdown()


async def test_queued_counts_jobs_waiting_for_a_worker() -> None:
    pool = make_pool(memory_kib=19456, time_cost=2, workers=1, queue=3)
    try:
        tasks = [asyncio.create_task(pool.hash("a password here")) for _ in range(4)]
        await asyncio.sleep(0)
        assert pool.in_flight == 4
        assert pool.queued == 3
        await asyncio.gather(*tasks)
        assert pool.queued == 0
    finally:
        pool.shutdown()


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="per-thread nice values are Linux's")
async def test_hashing_threads_run_nicer_than_the_event_loop(pool: PasswordPool) -> None:
    # The pool starts its threads on first use: the threads that appear are its own.
    before = threads()
    await asyncio.gather(*(pool.hash("correct horse battery staple") for _ in range(2)))
    hashing = threads() - before
    assert hashing
    loop_nice = nice_of(threading.get_native_id())
    assert HASH_NICENESS > 0
    assert {nice_of(thread) for thread in hashing} == {min(19, loop_nice + HASH_NICENESS)}


def threads() -> set[int]:
    return {int(task.name) for task in Path("/proc/self/task").iterdir()}


def nice_of(thread: int) -> int:
    # Field 19 of /proc/self/task/<tid>/stat, counted after the parenthesised command name.
    return int(Path(f"/proc/self/task/{thread}/stat").read_text().rsplit(")", 1)[1].split()[16])
