"""`/account/password` (INTERFACE §4): the current password is required, other sessions and every token end,
a notice goes out by email."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import pytest

from idp.config import Settings
from tests.conftest import Running
from tests.http.account.conftest import deliver_mail
from tests.support.pages import PASSWORD, csrf_token, make_user, submit_login
from tests.support.smtp import SmtpServer, text_of

StartApp = Callable[[Settings], Coroutine[Any, Any, Running]]
EMAIL = "person@example.com"
NEW_PASSWORD = "violet kettle drums at midnight"


@pytest.fixture
async def running(start_app: StartApp, mail_settings: Callable[..., Settings]) -> Running:
    return await start_app(mail_settings())


async def change(client: httpx.AsyncClient, current: str, new: str) -> httpx.Response:
    token = await csrf_token(client, "/account/password")
    return await client.post(
        "/account/password", data={"current_password": current, "password": new, "csrf_token": token}
    )


async def test_change_keeps_this_session_and_ends_the_others(running: Running, smtp: SmtpServer) -> None:
    await make_user(running.idp)
    async with running.client() as here, running.client() as there:
        assert (await submit_login(here, EMAIL, PASSWORD)).status_code == 303
        assert (await submit_login(there, EMAIL, PASSWORD)).status_code == 303
        done = await change(here, PASSWORD, NEW_PASSWORD)
        assert done.status_code == 200, done.text
        assert "Your password was changed" in done.text
        assert (await here.get("/account")).status_code == 200
        assert (await there.get("/account")).status_code == 303
    async with running.client() as c:
        assert (await submit_login(c, EMAIL, PASSWORD)).status_code == 400
        assert (await submit_login(c, EMAIL, NEW_PASSWORD)).status_code == 303
    assert await deliver_mail(running) == 1
    [notice] = smtp.inbox.to(EMAIL)
    assert "was just changed" in text_of(notice)


async def test_the_current_password_is_required_and_counted(running: Running) -> None:
    await make_user(running.idp)
    async with running.client() as c:
        assert (await submit_login(c, EMAIL, PASSWORD)).status_code == 303
        wrong = await change(c, "not my password at all", NEW_PASSWORD)
        assert wrong.status_code == 400
        assert "current password is not correct" in wrong.text
        weak = await change(c, PASSWORD, "password1")
        assert weak.status_code == 400
        assert "too common" in weak.text
        for _ in range(5):
            await change(c, "not my password at all", NEW_PASSWORD)
        assert (await change(c, PASSWORD, NEW_PASSWORD)).status_code == 429
    async with running.client(ip="203.0.113.77") as c:
        assert (await submit_login(c, EMAIL, PASSWORD)).status_code in (303, 429)


async def test_anonymous_visitors_go_to_sign_in(running: Running) -> None:
    async with running.client() as c:
        page = await c.get("/account/password")
        assert page.status_code == 303
        assert page.headers["location"].startswith("/login")
        token = await csrf_token(c)
        posted = await c.post(
            "/account/password", data={"current_password": "x", "password": NEW_PASSWORD, "csrf_token": token}
        )
        assert posted.status_code == 303
