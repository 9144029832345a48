"""Staff browsers for the console tests: an account with a role, an authenticator, and an `mfa` session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest

from idp.clock import FrozenClock
from tests.conftest import Running
from tests.support.mfa import authenticator_added_elsewhere, totp_code
from tests.support.pages import PASSWORD, csrf_from, make_user, submit_login

StaffBrowser = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def staff_browser(running: Running, clock: FrozenClock) -> StaffBrowser:
    """`async with staff_browser(email, role) as browser`: signed in with password and authenticator code.

    `role` None: an account without a role; `two_step` False: no authenticator, so the session stays `pwd`."""

    @asynccontextmanager
    async def make(email: str, role: str | None, *, two_step: bool = True) -> AsyncIterator[httpx.AsyncClient]:
        user = await make_user(running.idp, email)
        if role is not None:
            await running.idp.users.set_role(user.id, role, True, actor="test")
        secret = await authenticator_added_elsewhere(running, user.id, clock.now()) if two_step else None
        async with running.client() as browser:
            login = await submit_login(browser, email, PASSWORD)
            assert login.status_code == 303, login.text
            if secret is not None:
                assert login.headers["location"].startswith("/login/verify")
                page = await browser.get("/login/verify")
                done = await browser.post(
                    "/login/verify", data={"code": totp_code(secret, clock.now()), "csrf_token": csrf_from(page.text)}
                )
                assert done.status_code == 303, done.text
            yield browser

    return make
