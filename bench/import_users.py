"""Benchmark onboarding: generate a job board's JSON Lines export and import it with the same service as
`idp users import`, on a fresh PostgreSQL database; print the time of the import and of a re-run.

Not a test: it prints numbers for this machine. See bench/README.md.

    .venv/bin/python bench/import_users.py [--lines 100000] [--server postgresql+asyncpg://postgres@127.0.0.1:5432]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import bcrypt
import pyotp
from passlib import hash as passlib_hash

from idp.auth.passwords import PasswordPool
from idp.clock import Clock
from idp.config import Settings
from idp.container import build_services
from idp.ops.metrics import Metrics
from idp.store.migrate import upgrade

DATABASE = "idp_bench_import"


def _hashes(count: int) -> list[str]:
    """Real hashes in the formats boards export (made once, reused: the import parses but never verifies them)."""
    made = []
    for i in range(count):
        password = f"password {i}"
        made += [
            bcrypt.hashpw(password.encode(), bcrypt.gensalt(10)).decode().replace("$2b$", "$2y$", 1),
            passlib_hash.phpass.using(rounds=13).hash(password),  # WordPress: $P$B
            passlib_hash.django_pbkdf2_sha256.using(rounds=100_000).hash(password),
            passlib_hash.pbkdf2_sha256.hash(password),
        ]
    return made


def write_file(path: Path, lines: int, client_id: str) -> None:
    hashes = _hashes(25)
    secrets = [pyotp.random_base32() for _ in range(50)]
    with path.open("w") as out:
        for i in range(lines):
            record: dict[str, Any] = {
                "email": f"seeker{i}@board.example",
                "name": f"Job Seeker {i}",
                "email_verified": True,
                "password_hash": hashes[i % len(hashes)],
                "external_id": {"client_id": client_id, "id": str(100_000 + i)},
            }
            if i % 5 == 0:
                record["totp_secret"] = secrets[i % len(secrets)]
            out.write(json.dumps(record) + "\n")


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(65536):
            yield chunk


async def _recreate(server: str) -> str:
    conn = await asyncpg.connect(server.replace("postgresql+asyncpg", "postgresql") + "/postgres")
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        await conn.close()
    return f"{server}/{DATABASE}"


async def main(lines: int, server: str) -> None:
    url = await _recreate(server)
    await asyncio.to_thread(upgrade, url)
    settings = Settings(_env_file=None, database_url=url, secret_key="b" * 40, encryption_key="e" * 40)  # type: ignore[call-arg]
    pool = PasswordPool(memory_kib=1024, time_cost=1, parallelism=1, workers=1, queue=1)
    idp = await build_services(settings, Clock(), Metrics(lambda: 0), pool)
    try:
        client, _ = await idp.clients.create("Bench board", redirect_uris=["https://board.example/cb"])
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "board.jsonl"
            write_file(path, lines, client.client_id)
            size = path.stat().st_size
            for label in ("import", "re-run"):
                started = time.perf_counter()
                summary: dict[str, Any] = {}
                async for result in idp.importer.run(_chunks(path), actor="bench"):
                    summary = result.get("summary", summary)
                elapsed = time.perf_counter() - started
                print(
                    json.dumps(
                        {
                            "run": label,
                            "lines": lines,
                            "bytes": size,
                            "seconds": round(elapsed, 2),
                            "lines_per_second": round(lines / elapsed),
                            "summary": summary,
                        }
                    )
                )
    finally:
        pool.shutdown()
        await idp.close()
    print(json.dumps({"python": platform.python_version(), "cpus": os.cpu_count(), "database": "postgresql"}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--server", default="postgresql+asyncpg://postgres@127.0.0.1:5432")
    args = parser.parse_args()
    asyncio.run(main(args.lines, args.server))
