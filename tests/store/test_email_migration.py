"""#10.17: the migration that recomputes email_norm with the Unicode normaliser, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from idp.store.migrate import downgrade, upgrade
from tests.conftest import drop_pg_database, recreate_pg_database, run_sync

BEFORE = "0004"
# (id, email, email_norm as lower() left it), oldest first.
LEGACY_ROWS = [
    ("u1", "Kim@example.com", "kim@example.com"),
    ("u2", "ｋｉｍ@example.com", "ｋｉｍ@example.com"),  # fullwidth: the same address once normalised
    ("u3", "Straße@example.de", "straße@example.de"),
    ("u4", "e\u0301ve@example.no", "e\u0301ve@example.no"),  # NFD
    ("u5", "\u00e9ve@example.no", "\u00e9ve@example.no"),  # NFC, newer: its own form is now u4's
    ("u6", "\u212aate@example.com", "kate@example.com"),  # Kelvin sign: lower() already made it k
    ("u7", "plain@example.com", "plain@example.com"),
]


@pytest.fixture(params=["sqlite", "postgresql"])
def old_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database at the revision before the normaliser, holding rows normalised the old way."""
    name = None
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    else:
        request.getfixturevalue("postgres_database")
        # Per process: other checkouts may be running these tests against the same server.
        name = f"idp_test_email_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"
        url = recreate_pg_database(name)
    upgrade(url, BEFORE)
    start = datetime(2026, 1, 1, tzinfo=UTC)

    async def insert() -> None:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                for age, (user_id, email, norm) in enumerate(LEGACY_ROWS):
                    at = start + timedelta(days=age)
                    await conn.execute(
                        text(
                            "INSERT INTO users (id, email, email_norm, name, disabled, created_at, updated_at) "
                            "VALUES (:id, :email, :norm, '', false, :at, :at)"
                        ),
                        {
                            "id": user_id,
                            "email": email,
                            "norm": norm,
                            "at": at.replace(tzinfo=None) if "sqlite" in url else at,
                        },
                    )
        finally:
            await engine.dispose()

    run_sync(insert)
    yield url
    if name is not None:
        drop_pg_database(name)


def norms(url: str) -> dict[str, str]:
    async def read() -> dict[str, str]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                rows = (await conn.execute(text("SELECT id, email_norm FROM users"))).all()
                return {row[0]: row[1] for row in rows}
        finally:
            await engine.dispose()

    return run_sync(read)  # type: ignore[no-any-return]


def test_norms_are_recomputed_and_collisions_leave_the_older_row_the_address(old_database: str) -> None:
    upgrade(old_database)

    assert norms(old_database) == {
        "u1": "kim@example.com",
        "u2": "ｋｉｍ@example.com",  # newer look-alike: unchanged, so no normalised sign-in reaches it
        "u3": "strasse@example.de",
        "u4": "\u00e9ve@example.no",  # the older of the NFD/NFC pair takes the composed form
        "u5": "legacy:u5",  # its own form is now u4's: a marker no sign-in can produce
        "u6": "kate@example.com",
        "u7": "plain@example.com",
    }


def test_the_migration_steps_down_and_up_again(old_database: str) -> None:
    upgrade(old_database)
    after = norms(old_database)

    downgrade(old_database, BEFORE)
    down = norms(old_database)
    assert down["u3"] == "straße@example.de"
    assert down["u1"] == "kim@example.com"
    assert len(set(down.values())) == len(LEGACY_ROWS)

    upgrade(old_database)
    assert norms(old_database) == after
