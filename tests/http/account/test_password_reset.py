"""`/password/forgot` and `/password/reset` with a real SMTP server: enumeration-safe, single-use 30-minute links,
the second factor required when it is on, and everything of the person ended afterwards (INTERFACE §4)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from idp.clock import FrozenClock
from idp.config import Settings
from idp.store.models import AccountToken, LoginSession
from tests.conftest import Running
from tests.http.account.conftest import deliver_mail
from tests.support.admin import admin_client, audit_events
from tests.support.mfa import enroll, totp_code
from tests.support.pages import PASSWORD, csrf_from, csrf_token, make_user, submit_login
from tests.support.smtp import SmtpServer, links_in, text_of

StartApp = Callable[[Settings], Coroutine[Any, Any, Running]]
EMAIL = "person@example.com"
NEW_PASSWORD = "violet kettle drums at midnight"
# Loggers of the test's own HTTP client and SMTP server, which see the link by design.
NOT_IDP = ("httpx", "httpcore", "mail.log")


@pytest.fixture
async def running(start_app: StartApp, mail_settings: Callable[..., Settings]) -> Running:
    return await start_app(mail_settings(support_url="https://help.example.com/lost-phone"))


async def forgot(client: httpx.AsyncClient, email: str, **extra: str) -> httpx.Response:
    token = await csrf_token(client, "/password/forgot")
    return await client.post("/password/forgot", data={"email": email, "csrf_token": token, **extra})


async def reset_link(running: Running, smtp: SmtpServer, email: str = EMAIL) -> str:
    assert await deliver_mail(running) >= 1
    # The newest message with a reset link: a notice queued earlier (two-step verification turned on) goes out in
    # the same round, and a round sends its messages at once, so they arrive in any order.
    message = [m for m in smtp.inbox.to(email) if any("/password/reset?token=" in u for u in links_in(m))][-1]
    [link] = [u for u in links_in(message) if "/password/reset?token=" in u]
    return link.removeprefix("http://testserver")


async def submit_reset(client: httpx.AsyncClient, link: str, password: str, code: str | None = None) -> httpx.Response:
    page = await client.get(link)
    assert page.status_code == 200, page.text
    token = link.split("token=", 1)[1]
    data = {"token": token, "password": password, "csrf_token": csrf_from(page.text)}
    if code is not None:
        data["code"] = code
    return await client.post("/password/reset", data=data)


async def test_same_answer_for_known_and_unknown_addresses(running: Running, smtp: SmtpServer) -> None:
    await make_user(running.idp)
    async with running.client() as c:
        known = await forgot(c, EMAIL)
        unknown = await forgot(c, "nobody@example.com")
    assert known.status_code == unknown.status_code == 200
    assert known.text.replace(EMAIL, "X") == unknown.text.replace("nobody@example.com", "X")
    assert await deliver_mail(running) == 1
    assert len(smtp.inbox.to(EMAIL)) == 1
    assert smtp.inbox.to("nobody@example.com") == []


async def test_reset_signs_out_everywhere_sends_a_notice_and_the_link_works_once(
    running: Running, smtp: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    await make_user(running.idp)
    async with running.client() as elsewhere, running.client(ip="203.0.113.9") as c:
        assert (await submit_login(elsewhere, EMAIL, PASSWORD)).status_code == 303
        with caplog.at_level(logging.DEBUG):
            assert (await forgot(c, EMAIL)).status_code == 200
            link = await reset_link(running, smtp)
            done = await submit_reset(c, link, NEW_PASSWORD)
            assert done.status_code == 200, done.text
            assert "Your password was changed" in done.text
            # Used once: the same link is refused, on the page and on the form.
            assert (await c.get(link)).status_code == 400
            again = await c.post(
                "/password/reset",
                data={
                    "token": link.split("token=")[1],
                    "password": "another fine long passphrase",
                    "csrf_token": await csrf_token(c),
                },
            )
            assert again.status_code == 400
            assert (await deliver_mail(running)) == 1
        token = link.split("token=")[1]
        assert [r.name for r in caplog.records if token in r.getMessage() and r.name not in NOT_IDP] == []
        # The other browser was signed out; the old password no longer works, the new one does.
        assert (await elsewhere.get("/account")).status_code == 303
        assert (await submit_login(c, EMAIL, PASSWORD)).status_code == 400
        assert (await submit_login(c, EMAIL, NEW_PASSWORD)).status_code == 303
    [_, notice] = smtp.inbox.to(EMAIL)
    assert "was just changed" in text_of(notice)
    async with running.idp.db.transaction() as session:
        rows = (await session.execute(select(AccountToken))).scalars().all()
    assert [r.token_hash for r in rows if token in r.token_hash] == []  # stored hashed


async def test_the_link_expires_after_30_minutes(running: Running, smtp: SmtpServer, clock: FrozenClock) -> None:
    await make_user(running.idp)
    async with running.client() as c:
        await forgot(c, EMAIL)
        link = await reset_link(running, smtp)
        clock.advance(29 * 60)
        assert (await c.get(link)).status_code == 200
        clock.advance(61)
        expired = await c.get(link)
        assert expired.status_code == 400
        assert "/password/forgot" in expired.text
        assert (await submit_login(c, EMAIL, PASSWORD)).status_code == 303


async def test_two_step_verification_needs_a_code(running: Running, smtp: SmtpServer, clock: FrozenClock) -> None:
    await make_user(running.idp)
    async with running.client() as c:
        assert (await submit_login(c, EMAIL, PASSWORD)).status_code == 303
        secret, _ = await enroll(c, clock.now())
        clock.advance(60)
    async with running.client(ip="203.0.113.9") as c:
        await forgot(c, EMAIL)
        link = await reset_link(running, smtp)
        page = await c.get(link)
        assert 'name="code"' in page.text
        assert "https://help.example.com/lost-phone" in page.text
        assert (await submit_reset(c, link, NEW_PASSWORD)).status_code == 400  # no code
        assert (await submit_reset(c, link, NEW_PASSWORD, code="000000")).status_code == 400
        # Nothing changed: the old password still works (up to the second step).
        assert (await submit_login(c, EMAIL, PASSWORD)).headers["location"].startswith("/login/verify")
        done = await submit_reset(c, link, NEW_PASSWORD, code=totp_code(secret, clock.now()))
        assert done.status_code == 200, done.text
        assert (await submit_login(c, EMAIL, NEW_PASSWORD)).headers["location"].startswith("/login/verify")


async def test_a_backup_code_works_as_the_second_factor(running: Running, smtp: SmtpServer, clock: FrozenClock) -> None:
    await make_user(running.idp)
    async with running.client() as c:
        assert (await submit_login(c, EMAIL, PASSWORD)).status_code == 303
        _, codes = await enroll(c, clock.now())
    async with running.client(ip="203.0.113.9") as c:
        await forgot(c, EMAIL)
        link = await reset_link(running, smtp)
        assert (await submit_reset(c, link, NEW_PASSWORD, code=codes[0])).status_code == 200


async def test_weak_passwords_are_refused_with_a_reason(running: Running, smtp: SmtpServer) -> None:
    await make_user(running.idp)
    async with running.client() as c:
        await forgot(c, EMAIL)
        link = await reset_link(running, smtp)
        for weak, reason in [
            ("short", "at least 8 characters"),
            ("password123", "too common"),
            ("my person@example.com pass", "does not contain your email"),
            ("x" * 129, "at most 128 characters"),
        ]:
            refused = await submit_reset(c, link, weak)
            assert refused.status_code == 400
            assert reason in refused.text
        assert (await submit_reset(c, link, NEW_PASSWORD)).status_code == 200


async def test_the_attempt_limits_are_cleared(running: Running, smtp: SmtpServer) -> None:
    await make_user(running.idp)
    async with running.client(ip="203.0.113.50") as stranger:
        for _ in range(5):
            await submit_login(stranger, EMAIL, "wrong password here")
        assert (await submit_login(stranger, EMAIL, PASSWORD)).status_code == 429
    async with running.client() as c:
        await forgot(c, EMAIL)
        link = await reset_link(running, smtp)
        assert (await submit_reset(c, link, NEW_PASSWORD)).status_code == 200
        assert (await submit_login(c, EMAIL, NEW_PASSWORD)).status_code == 303


async def test_too_many_requests_for_one_address_are_limited_the_same_for_unknown_ones(running: Running) -> None:
    await make_user(running.idp)
    async with running.client() as c:
        for email in (EMAIL, "nobody@example.com"):
            answers = [(await forgot(c, email)).status_code for _ in range(4)]
            assert answers == [200, 200, 200, 429]


async def test_reset_off_without_email(start_app: StartApp, make_settings: Callable[..., Settings]) -> None:
    running = await start_app(make_settings())
    async with running.client() as c:
        assert (await c.get("/password/forgot")).status_code == 404
        assert (await c.post("/password/forgot", data={"email": EMAIL})).status_code == 404
        assert "Forgot your password?" not in (await c.get("/login")).text


async def test_login_offers_the_link(running: Running) -> None:
    async with running.client() as c:
        page = await c.get("/login")
    assert "Forgot your password?" in page.text
    assert "/password/forgot" in page.text


async def test_other_sessions_end(running: Running, smtp: SmtpServer) -> None:
    await make_user(running.idp)
    async with running.client() as a, running.client() as b:
        assert (await submit_login(a, EMAIL, PASSWORD)).status_code == 303
        assert (await submit_login(b, EMAIL, PASSWORD)).status_code == 303
        await forgot(a, EMAIL)
        link = await reset_link(running, smtp)
        assert (await submit_reset(a, link, NEW_PASSWORD)).status_code == 200
    async with running.idp.db.transaction() as session:
        assert (await session.execute(select(LoginSession))).scalars().all() == []


async def test_admin_api_sends_the_reset_email(running: Running, smtp: SmtpServer) -> None:
    user = await make_user(running.idp)
    async with await admin_client(running) as admin:
        sent = await admin.post(f"/admin/api/users/{user.id}/password-reset")
        assert sent.status_code == 202
        assert sent.content == b""
        assert (await admin.post("/admin/api/users/not-a-user/password-reset")).status_code == 404
        spec = (await admin.get("/admin/api/openapi.json")).json()
        assert "202" in spec["paths"]["/admin/api/users/{user_id}/password-reset"]["post"]["responses"]
    async with running.client() as c:
        link = await reset_link(running, smtp)
        assert (await submit_reset(c, link, NEW_PASSWORD)).status_code == 200
    [event] = await audit_events(running, "admin.password_reset_link")
    assert event.user_id == user.id


async def test_admin_api_says_conflict_when_email_is_off(
    start_app: StartApp, make_settings: Callable[..., Settings]
) -> None:
    running = await start_app(make_settings())
    user = await make_user(running.idp)
    async with await admin_client(running) as admin:
        assert (await admin.post(f"/admin/api/users/{user.id}/password-reset")).status_code == 409


async def test_a_reset_also_confirms_the_address(running: Running, smtp: SmtpServer) -> None:
    user = await make_user(running.idp)
    assert user.email_verified is False
    async with running.client() as c:
        await forgot(c, EMAIL)
        link = await reset_link(running, smtp)
        assert (await submit_reset(c, link, NEW_PASSWORD)).status_code == 200
    assert (await running.idp.users.load(user.id)).email_verified is True
