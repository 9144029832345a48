"""Run the Alembic migrations in `migrations/` (shipped inside the wheel as `idp/_migrations`)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

_PACKAGE = Path(__file__).resolve().parent.parent


def migrations_dir() -> Path:
    """The migrations folder: the source tree's in a checkout, the packaged copy in an installed wheel."""
    for candidate in (_PACKAGE.parent / "migrations", _PACKAGE / "_migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise FileNotFoundError("idp's migrations folder is missing from this installation")


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database to `revision`. Blocking: call from a thread when an event loop is running."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


SchemaState = Literal["missing", "behind", "current", "ahead"]


def schema_state(database_url: str) -> SchemaState:
    """Where the database's schema stands against this code's migrations (blocking, like `upgrade`).

    `ahead`: a newer release migrated it first; this one may still serve, since migrations only add."""
    current = asyncio.run(_current_heads(database_url))
    if not current:
        return "missing"
    script = ScriptDirectory.from_config(alembic_config(database_url))
    if current == set(script.get_heads()):
        return "current"
    known = {revision.revision for revision in script.walk_revisions()}
    return "behind" if current <= known else "ahead"


async def _current_heads(database_url: str) -> set[str]:
    engine = create_async_engine(database_url, hide_parameters=True)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_heads_of)
    finally:
        await engine.dispose()


def _heads_of(connection: Connection) -> set[str]:
    return set(MigrationContext.configure(connection).get_current_heads())
