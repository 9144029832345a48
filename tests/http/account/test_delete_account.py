"""`/account/delete` and the admin DELETE (issue #13): password and second factor required; afterwards every
session and token has ended, the job boards were told (Back-Channel Logout), `sub` is unknown everywhere, and
nothing about the person is left but audit events holding only their user id."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any

import httpx
import pytest

from idp.clock import FrozenClock
from idp.config import Settings
from idp.store.models import User
from tests.conftest import TEST_CLIENT_IP, Running
from tests.http.account.conftest import deliver_mail
from tests.support.admin import API, admin_client, audit_events, dump_tables, refresh, tokens_for
from tests.support.mfa import enroll, totp_code
from tests.support.oidc import RegisteredClient, make_client
from tests.support.pages import PASSWORD, csrf_from, make_user, submit_login
from tests.support.receiver import Receiver, receiver
from tests.support.smtp import SmtpServer, text_of
from tests.support.wire import assert_json_error

StartApp = Callable[[Settings], Coroutine[Any, Any, Running]]
EMAIL = "person@example.com"


@pytest.fixture
async def running(start_app: StartApp, mail_settings: Callable[..., Settings]) -> Running:
    return await start_app(mail_settings(backchannel_logout_timeout_seconds=0.5))


@pytest.fixture
def board() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


@pytest.fixture
async def person(running: Running) -> User:
    return await make_user(running.idp, EMAIL, name="Kari Nordmann")


@pytest.fixture
async def browser(running: Running, person: User) -> AsyncIterator[httpx.AsyncClient]:
    async with running.client() as c:
        assert (await submit_login(c, EMAIL, PASSWORD)).status_code == 303
        yield c


async def delete(browser: httpx.AsyncClient, password: str, code: str | None = None) -> httpx.Response:
    page = await browser.get("/account/delete")
    assert page.status_code == 200, page.text
    data = {"password": password, "csrf_token": csrf_from(page.text)}
    if code is not None:
        data["code"] = code
    return await browser.post("/account/delete", data=data)


async def exists(running: Running, person: User) -> bool:
    async with running.idp.db.transaction() as session:
        return await session.get(User, person.id) is not None


async def expect_unknown_everywhere(running: Running, rp: RegisteredClient, tokens: dict[str, Any]) -> None:
    """userinfo, introspection and refresh answer as for a token never issued."""
    assert_json_error(await refresh(running, rp, tokens["refresh_token"]), "invalid_grant")
    async with running.client() as backend:
        introspected = await backend.post("/introspect", data={"token": tokens["access_token"]}, auth=rp.basic)
        assert introspected.json() == {"active": False}
        userinfo = await backend.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert userinfo.status_code == 401


async def expect_nothing_left_but_the_user_id_in_audit(running: Running, person: User) -> None:
    """No table holds the person's id but the audit log (and the outbox until delivery); none their email or name,
    and their audit events have no client address."""
    tables = await dump_tables(running)
    for table, rows in tables.items():
        text = repr(rows)
        assert EMAIL not in text, table
        assert "Kari Nordmann" not in text, table
        if table not in ("audit_events", "outbox"):
            assert person.id not in text, table
    events = [e for e in await audit_events(running) if e.user_id == person.id]
    assert events
    # The deletion by an operator keeps the operator's own address (who acted); nothing keeps the person's.
    assert {e.client_ip for e in events if e.type != "admin.user_deleted"} == {""}


async def test_delete_needs_password_and_code_then_everything_of_the_person_ends(
    running: Running,
    browser: httpx.AsyncClient,
    person: User,
    clock: FrozenClock,
    board: Receiver,
    smtp: SmtpServer,
) -> None:
    secret, backup_codes = await enroll(browser, clock.now())
    rp = await make_client(running.idp, backchannel_logout_uri=board.uri)
    tokens = await tokens_for(running, browser, rp, scope="openid email offline_access")
    clock.advance(31)

    page = await browser.get("/account/delete")
    assert 'name="code"' in page.text
    no_code = await delete(browser, PASSWORD)
    assert no_code.status_code == 400
    assert "Enter a code" in no_code.text
    wrong_password = await delete(browser, "not my password at all", totp_code(secret, clock.now()))
    assert wrong_password.status_code == 400
    assert "current password is not correct" in wrong_password.text
    wrong_code = await delete(browser, PASSWORD, "000000")
    assert wrong_code.status_code == 400
    forged = await browser.post("/account/delete", data={"password": PASSWORD, "code": backup_codes[0]})
    assert forged.status_code == 403
    assert await exists(running, person)
    assert (await refresh(running, rp, tokens["refresh_token"])).status_code == 200  # nothing ended yet
    tokens = await tokens_for(running, browser, rp, scope="openid email offline_access")

    done = await delete(browser, PASSWORD, totp_code(secret, clock.now()))
    assert done.status_code == 200, done.text
    assert "Your account was deleted" in done.text
    assert done.headers["set-cookie"].startswith('idp_session=""')  # the cookie is dropped
    assert not await exists(running, person)
    assert (await browser.get("/account")).status_code == 303

    await expect_unknown_everywhere(running, rp, tokens)
    async with running.client() as c:
        assert (await submit_login(c, EMAIL, PASSWORD)).status_code == 400

    await deliver_mail(running)  # the logout token and the last email
    assert len(board.tokens) == 1
    [notice] = [m for m in smtp.inbox.to(EMAIL) if "deleted" in m["Subject"]]
    assert "was deleted" in text_of(notice)
    await expect_nothing_left_but_the_user_id_in_audit(running, person)
    [deleted] = await audit_events(running, "account.deleted")
    assert deleted.user_id == person.id
    assert '"sessions_ended": 1' in deleted.details


async def test_without_two_step_verification_the_password_is_enough(
    running: Running, browser: httpx.AsyncClient, person: User
) -> None:
    page = await browser.get("/account/delete")
    assert 'name="code"' not in page.text
    assert (await delete(browser, PASSWORD)).status_code == 200
    assert not await exists(running, person)


async def test_wrong_passwords_count_like_wrong_sign_ins(
    running: Running, browser: httpx.AsyncClient, person: User
) -> None:
    for _ in range(5):
        assert (await delete(browser, "not my password at all")).status_code == 400
    assert (await delete(browser, PASSWORD)).status_code == 429
    assert await exists(running, person)


async def test_anonymous_visitors_go_to_sign_in(running: Running) -> None:
    async with running.client() as c:
        page = await c.get("/account/delete")
        assert page.status_code == 303
        assert page.headers["location"] == "/login?next=%2Faccount%2Fdelete"


async def test_the_admin_delete_does_the_same_cleanup(
    running: Running,
    browser: httpx.AsyncClient,
    person: User,
    clock: FrozenClock,
    board: Receiver,
    smtp: SmtpServer,
) -> None:
    rp = await make_client(running.idp, backchannel_logout_uri=board.uri)
    await enroll(browser, clock.now())
    tokens = await tokens_for(running, browser, rp, scope="openid email offline_access")
    async with await admin_client(running) as admin:
        reset = await admin.post(f"{API}/users/{person.id}/mfa/reset", json={"reason": "Kari showed her passport"})
        assert reset.status_code == 200
        tokens = await tokens_for(running, browser, rp, scope="openid email offline_access")
        assert any(e.client_ip == TEST_CLIENT_IP for e in await audit_events(running) if e.user_id == person.id)
        assert (await admin.delete(f"{API}/users/{person.id}")).status_code == 204
        assert (await admin.get(f"{API}/users/{person.id}")).status_code == 404
        assert (await admin.delete(f"{API}/users/{person.id}")).status_code == 404

    await expect_unknown_everywhere(running, rp, tokens)
    await deliver_mail(running)
    assert len(board.tokens) == 2  # the session the reset ended, and the one signed in again after it
    assert [m for m in smtp.inbox.to(EMAIL) if "deleted" in m["Subject"]]
    await expect_nothing_left_but_the_user_id_in_audit(running, person)
    [reset_event] = await audit_events(running, "admin.mfa_reset")
    assert "passport" not in reset_event.details
