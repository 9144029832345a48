"""`idp migrate` run by several processes at once on one fresh PostgreSQL database (a Job retried while the
previous pod still runs, two operators, an init container per replica): all succeed and the schema is at head once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from idp.store.migrate import alembic_config
from idp.store.models import Base
from tests.conftest import run_sync

PROCESSES = 3


def head_revision(url: str) -> str:
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    assert head is not None
    return head


def schema_of(url: str) -> tuple[list[str], list[str]]:
    async def go() -> tuple[list[str], list[str]]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
                tables = (
                    (
                        await conn.execute(
                            text("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
                        )
                    )
                    .scalars()
                    .all()
                )
        finally:
            await engine.dispose()
        return list(versions), sorted(tables)

    return run_sync(go)  # type: ignore[no-any-return]


def test_migrations_from_several_processes_at_once(fresh_pg: Callable[[], str], tmp_path: Path) -> None:
    url = fresh_pg()
    env = {name: value for name, value in os.environ.items() if not name.upper().startswith("IDP_")}
    env["IDP_DATABASE_URL"] = url
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "idp.cli", "migrate"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tmp_path,
        )
        for _ in range(PROCESSES)
    ]
    results = []
    for process in processes:
        try:
            out, err = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
        results.append((process.returncode, out, err))

    for returncode, out, err in results:
        assert returncode == 0, err
        assert json.loads(out) == {"migrated": True}
    versions, tables = schema_of(url)
    assert versions == [head_revision(url)]
    assert tables == sorted([*Base.metadata.tables, "alembic_version"])
