"""Fixtures for replica tests (PostgreSQL only): fresh empty databases, and settings for replicas sharing one."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from idp.config import Settings
from tests.conftest import FAST_ARGON2, drop_pg_database, recreate_pg_database, truncate_pg

_names = itertools.count()


@pytest.fixture
def fresh_pg(postgres_database: str) -> Iterator[Callable[[], str]]:
    """Make empty PostgreSQL databases (no schema at all); all are dropped after the test.

    Depending on `postgres_database` makes these tests skip, or fail under IDP_TEST_REQUIRE_POSTGRES, like every
    other PostgreSQL test when the server is absent.
    """
    made: list[str] = []
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")

    def make() -> str:
        name = f"idp_test_replicas_{worker}_{os.getpid()}_{next(_names)}"
        made.append(name)
        return recreate_pg_database(name)

    yield make
    for name in made:
        drop_pg_database(name)


@pytest.fixture
def pg_settings(postgres_database: str) -> Callable[..., Settings]:
    """Settings for replicas sharing the session's PostgreSQL database, emptied first."""
    truncate_pg(postgres_database)

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": postgres_database,
            "issuer": "http://testserver",
            "secret_key": "s" * 40,
            "encryption_key": "e" * 40,
            **FAST_ARGON2,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return make
