"""Benchmark argon2id password verification: one verification's latency, and PasswordPool's throughput.

Not a test: it prints numbers for this machine. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import time

from argon2 import PasswordHasher, Type

from idp.auth.passwords import PasswordPool
from idp.config import Settings

# The defaults idp runs with (idp/config.py), read from Settings so this never drifts from the code.
_FIELDS = Settings.model_fields
MEMORY_KIB: int = _FIELDS["argon2_memory_kib"].default
TIME_COST: int = _FIELDS["argon2_time_cost"].default
PARALLELISM: int = _FIELDS["argon2_parallelism"].default
PASSWORD = "correct horse battery staple"  # noqa: S105 - benchmark input, not a credential


def single_verification(rounds: int) -> list[float]:
    """Wall time of `rounds` sequential verifications with argon2-cffi directly, in seconds."""
    hasher = PasswordHasher(time_cost=TIME_COST, memory_cost=MEMORY_KIB, parallelism=PARALLELISM, type=Type.ID)
    stored = hasher.hash(PASSWORD)
    hasher.verify(stored, PASSWORD)  # warm-up: first-touch page faults for the 19 MiB block
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        hasher.verify(stored, PASSWORD)
        times.append(time.perf_counter() - started)
    return times


async def pool_throughput(total: int, workers: int, queue: int) -> tuple[float, int]:
    """Verify `total` passwords through PasswordPool, at most `workers + queue` in flight; (seconds, ok count)."""
    pool = PasswordPool(
        memory_kib=MEMORY_KIB, time_cost=TIME_COST, parallelism=PARALLELISM, workers=workers, queue=queue
    )
    try:
        stored = await pool.hash(PASSWORD)
        await asyncio.gather(*(pool.verify(stored, PASSWORD) for _ in range(workers)))  # warm every thread
        batch = workers + queue  # the pool refuses (Overloaded) anything beyond this many in flight
        ok = 0
        started = time.perf_counter()
        for first in range(0, total, batch):
            size = min(batch, total - first)
            results = await asyncio.gather(*(pool.verify(stored, PASSWORD) for _ in range(size)))
            ok += sum(results)
        return time.perf_counter() - started, ok
    finally:
        pool.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="sequential verifications for the latency median")
    parser.add_argument("--total", type=int, default=200, help="verifications for the throughput run")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="pool threads (default: CPUs)")
    parser.add_argument(
        "--queue", type=int, default=_FIELDS["password_queue"].default, help="pool queue length (default: idp's)"
    )
    args = parser.parse_args()

    print(f"argon2id m={MEMORY_KIB} KiB, t={TIME_COST}, p={PARALLELISM}")
    python = f"{platform.python_implementation()} {platform.python_version()}"
    print(f"{python}, {os.cpu_count()} CPUs, {platform.machine()}")
    print()

    times = sorted(single_verification(args.rounds))
    median = statistics.median(times)
    elapsed, ok = asyncio.run(pool_throughput(args.total, args.workers, args.queue))
    if ok != args.total:
        raise SystemExit(f"only {ok} of {args.total} verifications succeeded")
    rate = args.total / elapsed

    rows = [
        ("one verification, median", f"{median * 1000:.1f} ms", f"of {args.rounds}, argon2-cffi direct"),
        ("one verification, min / max", f"{times[0] * 1000:.1f} / {times[-1] * 1000:.1f} ms", ""),
        ("single-thread ceiling", f"{1 / median:.1f} /s", "1 / median"),
        (
            "PasswordPool throughput",
            f"{rate:.1f} /s",
            f"{args.total} verifications, workers={args.workers}, queue={args.queue}, {elapsed:.2f} s",
        ),
        ("PasswordPool per worker", f"{rate / args.workers:.1f} /s", ""),
    ]
    width = max(len(name) for name, _, _ in rows)
    value_width = max(len(value) for _, value, _ in rows)
    print(f"{'measurement':<{width}}  {'value':>{value_width}}  note")
    print(f"{'-' * width}  {'-' * value_width}  ----")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>{value_width}}  {note}".rstrip())


if __name__ == "__main__":
    main()
