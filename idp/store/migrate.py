"""Run the Alembic migrations in `migrations/` (shipped inside the wheel as `idp/_migrations`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

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
