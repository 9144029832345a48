"""INTERFACE §3 for the password events: a password reset or change ends the person's other sessions with one
logout token to each job board they signed in to, and every refresh token (offline ones too) and every unredeemed
code answers `invalid_grant` afterwards."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator

import httpx
import pytest

from idp.config import Settings
from idp.store.models import User
from tests.conftest import Running
from tests.http.account.test_password_change import change
from tests.http.account.test_password_reset import forgot, reset_link, submit_reset
from tests.support.admin import refresh, tokens_for
from tests.support.oidc import (
    RegisteredClient,
    auth_params,
    decode_id_token,
    exchange,
    make_client,
    sign_in_and_authorize,
)
from tests.support.pages import PASSWORD, submit_login
from tests.support.receiver import Receiver, published_jwks, validate_logout_token
from tests.support.smtp import SmtpServer, smtp_server
from tests.support.wire import assert_json_error

NEW_PASSWORD = "violet kettle drums at midnight"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def settings(make_settings: Callable[..., Settings], smtp: SmtpServer) -> Settings:
    return make_settings(smtp_url=smtp.url, outbox_poll_seconds=300, backchannel_logout_timeout_seconds=0.5)


async def reset_from_another_browser(running: Running, smtp: SmtpServer, person: User) -> None:
    async with running.client(ip="203.0.113.9") as phone:
        assert (await forgot(phone, person.email)).status_code == 200
        link = await reset_link(running, smtp, person.email)
        done = await submit_reset(phone, link, NEW_PASSWORD)
        assert done.status_code == 200, done.text


async def change_from_another_browser(running: Running, smtp: SmtpServer, person: User) -> None:
    async with running.client() as laptop:
        assert (await submit_login(laptop, person.email, PASSWORD)).status_code == 303
        done = await change(laptop, PASSWORD, NEW_PASSWORD)
        assert done.status_code == 200, done.text
        assert (await laptop.get("/account")).status_code == 200  # the session that changed it stays


EVENTS: dict[str, Callable[[Running, SmtpServer, User], Awaitable[None]]] = {
    "password reset": reset_from_another_browser,
    "password change": change_from_another_browser,
}


async def redeem(running: Running, rp: RegisteredClient, code: str) -> httpx.Response:
    async with running.client() as backend:
        return await exchange(backend, rp, code)


@pytest.mark.parametrize("name", list(EVENTS))
async def test_the_boards_hear_of_it_and_every_grant_ends(
    name: str, running: Running, browser: httpx.AsyncClient, person: User, board: Receiver, smtp: SmtpServer
) -> None:
    rp = await make_client(running.idp, "Nordic Jobs", backchannel_logout_uri=board.uri)
    online = await tokens_for(running, browser, rp)
    offline = await tokens_for(running, browser, rp, scope="openid offline_access")
    unredeemed = (await sign_in_and_authorize(browser, auth_params(rp)))["code"]
    async with running.client() as rp_backend:
        sid = (await decode_id_token(rp_backend, online["id_token"]))["sid"]
        jwks = await published_jwks(rp_backend)

    await EVENTS[name](running, smtp, person)
    assert board.tries == 0  # queued by the request, not sent by it
    await running.idp.outbox.run_once()

    (token,) = board.tokens
    claims = validate_logout_token(token, jwks, issuer="http://testserver", client_id=rp.client_id)
    assert (claims["sub"], claims["sid"]) == (person.id, sid)
    assert (await browser.get("/account")).status_code == 303
    for refresh_token in (online["refresh_token"], offline["refresh_token"]):
        assert_json_error(await refresh(running, rp, refresh_token), "invalid_grant")
    assert_json_error(await redeem(running, rp, unredeemed), "invalid_grant")
