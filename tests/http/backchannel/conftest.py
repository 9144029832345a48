"""Fixtures for Back-Channel Logout: an app whose outbox worker stays idle (tests deliver with `run_once`), a
signed-in person, and a real receiver standing in for the job board's endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any

import httpx
import pytest

from idp.config import Settings
from idp.store.models import User
from tests.conftest import Running
from tests.support.pages import PASSWORD, make_user, submit_login
from tests.support.receiver import Receiver, receiver

# The background worker sleeps this long between rounds: the tests drive delivery themselves, in order.
IDLE_WORKER = {"outbox_poll_seconds": 300, "backchannel_logout_timeout_seconds": 0.5}


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(**IDLE_WORKER)


@pytest.fixture
async def running(start_app: Callable[..., Coroutine[Any, Any, Running]], settings: Settings) -> Running:
    return await start_app(settings)


@pytest.fixture
def board() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


@pytest.fixture
async def person(running: Running) -> User:
    return await make_user(running.idp)


@pytest.fixture
async def browser(running: Running, person: User) -> AsyncIterator[httpx.AsyncClient]:
    async with running.client() as c:
        assert (await submit_login(c, person.email, PASSWORD)).status_code == 303
        yield c
