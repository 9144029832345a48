"""Fixtures shared by the OIDC HTTP tests: a signed-in person's browser and a relying party's back end."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from idp.store.models import User
from tests.conftest import Running
from tests.support.pages import PASSWORD, make_user, submit_login


@pytest.fixture
async def person(running: Running) -> User:
    return await make_user(running.idp)


@pytest.fixture
async def browser(running: Running, person: User) -> AsyncIterator[httpx.AsyncClient]:
    """The person's browser, signed in at idp."""
    async with running.client() as c:
        assert (await submit_login(c, person.email, PASSWORD)).status_code == 303
        yield c


@pytest.fixture
async def backend(running: Running) -> AsyncIterator[httpx.AsyncClient]:
    """The relying party's back end: no cookies of the person."""
    async with running.client() as c:
        yield c
