"""#11: the migration that makes refresh tokens online or offline keeps every existing offline_access grant offline,
and steps down and up, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from idp.store.migrate import downgrade, upgrade
from tests.conftest import drop_pg_database, recreate_pg_database, run_sync

BEFORE = "2026_11_30_0008"
THIS = "2026_11_30_0009"
# (token_hash, kind, scope) -> offline after the migration
ROWS = {
    ("r-offline", "refresh", "openid offline_access"): True,
    ("r-offline-first", "refresh", "offline_access openid email"): True,
    ("r-online", "refresh", "openid email"): False,
    ("r-lookalike", "refresh", "openid offline_accessible"): False,
    ("a-offline", "access", "openid offline_access"): False,  # only refresh tokens outlive a session
}


@pytest.fixture(params=["sqlite", "postgresql"])
def old_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database at the revision before, holding tokens issued before online and offline were told apart."""
    name = None
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    else:
        request.getfixturevalue("postgres_database")
        name = f"idp_test_sessions_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"
        url = recreate_pg_database(name)
    upgrade(url, BEFORE)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    stamp = at.replace(tzinfo=None) if "sqlite" in url else at  # SQLite keeps UTC without a zone

    async def insert() -> None:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                for token_hash, kind, scope in ROWS:
                    await conn.execute(
                        text(
                            "INSERT INTO tokens (token_hash, kind, grant_id, client_id, scope, sid, amr, acr, "
                            "created_at, expires_at) VALUES (:h, :k, 'g', 'c', :s, 'sid-1', '', '', :at, :at)"
                        ),
                        {
                            "h": token_hash,
                            "k": kind,
                            "s": scope,
                            "at": stamp,
                        },
                    )
        finally:
            await engine.dispose()

    run_sync(insert)
    yield url
    if name:
        drop_pg_database(name)


def read(url: str) -> tuple[dict[str, bool], set[str]]:
    """Each token's offline flag (empty without the column) and the names of the indexes on the sid columns."""

    async def go() -> tuple[dict[str, bool], set[str]]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:

                def names(sync_conn: object) -> tuple[set[str], set[str]]:
                    inspector = inspect(sync_conn)
                    columns = {c["name"] for c in inspector.get_columns("tokens")}
                    indexes = {
                        str(i["name"])
                        for table in ("tokens", "login_sessions", "authorization_codes")
                        for i in inspector.get_indexes(table)
                        if i["column_names"] == ["sid"]
                    }
                    return columns, indexes

                columns, indexes = await conn.run_sync(names)
                if "offline" not in columns:
                    return {}, indexes
                rows = (await conn.execute(text("SELECT token_hash, offline FROM tokens"))).all()
                return {h: bool(o) for h, o in rows}, indexes
        finally:
            await engine.dispose()

    return run_sync(go)  # type: ignore[no-any-return]


def test_existing_offline_access_refresh_tokens_stay_offline_and_the_revision_steps_down_and_up(
    old_database: str,
) -> None:
    upgrade(old_database, THIS)
    flags, indexes = read(old_database)
    assert flags == {token_hash: offline for (token_hash, _, _), offline in ROWS.items()}
    assert indexes == {"ix_tokens_sid", "ix_login_sessions_sid", "ix_authorization_codes_sid"}

    downgrade(old_database, BEFORE)
    assert read(old_database) == ({}, set())

    upgrade(old_database, THIS)
    assert read(old_database) == (flags, indexes)
