"""Fixtures for relying-party library tests: a live idp per test (SQLite and PostgreSQL) and a person's browser."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.live import Browser, LiveIdp


@pytest.fixture
def live_idp(database_url: str) -> Iterator[LiveIdp]:
    server = LiveIdp(database_url)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def browser(live_idp: LiveIdp) -> Iterator[Browser]:
    person = Browser(live_idp.issuer)
    yield person
    person.close()
