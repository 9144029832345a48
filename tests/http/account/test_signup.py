"""`/signup`, `/signup/resend` and `/verify-email` with a real SMTP server: the same answer whether or not the
address is taken, single-use 24-hour links, `email_verified` afterwards, back to the job board (INTERFACE §4)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import func, select

from idp.clock import FrozenClock
from idp.config import Settings
from idp.store.models import User
from tests.conftest import Running
from tests.http.account.conftest import deliver_mail
from tests.support.admin import admin_client
from tests.support.oidc import (
    auth_params,
    authorize,
    decode_id_token,
    exchange,
    make_client,
    pkce_pair,
    query_of,
)
from tests.support.pages import PASSWORD, csrf_from, csrf_token, make_user, submit_login
from tests.support.smtp import SmtpServer, links_in, text_of

StartApp = Callable[[Settings], Coroutine[Any, Any, Running]]
EMAIL = "new.person@example.com"
GOOD_PASSWORD = "violet kettle drums at midnight"


@pytest.fixture
async def running(start_app: StartApp, mail_settings: Callable[..., Settings]) -> Running:
    return await start_app(mail_settings())


async def sign_up(
    client: httpx.AsyncClient, email: str = EMAIL, password: str = GOOD_PASSWORD, next_url: str = "", **extra: str
) -> httpx.Response:
    page = "/signup" + ("?" + urlencode({"next": next_url}) if next_url else "")
    data = {"email": email, "name": "New Person", "password": password, "next": next_url, **extra}
    if "csrf_token" not in data:
        data["csrf_token"] = await csrf_token(client, page)
    return await client.post("/signup", data=data)


async def verification_link(running: Running, smtp: SmtpServer, email: str = EMAIL) -> str:
    assert await deliver_mail(running) >= 1
    [link] = [u for u in links_in(smtp.inbox.to(email)[-1]) if "/verify-email?token=" in u]
    return link.removeprefix("http://testserver")


async def users(running: Running) -> int:
    async with running.idp.db.transaction() as session:
        return int((await session.execute(select(func.count()).select_from(User))).scalar_one())


async def test_from_a_job_board_to_verified_and_back(running: Running, smtp: SmtpServer) -> None:
    rp = await make_client(running.idp, "Nordic Jobs", allow_signup=True)
    verifier, challenge = pkce_pair()
    params = auth_params(rp, challenge, code_challenge_method="S256")
    async with running.client() as browser:
        to_login = await authorize(browser, params)
        login_page = await browser.get(to_login.headers["location"])
        assert "Create an account" in login_page.text
        next_url = query_of(to_login.headers["location"])["next"]
        form = await browser.get("/signup", params={"next": next_url})
        assert form.status_code == 200
        assert "Nordic Jobs" in form.text
        sent = await sign_up(browser, next_url=next_url)
        assert sent.status_code == 200
        assert "Check your email" in sent.text
        link = await verification_link(running, smtp)
        back = await browser.get(link)
        assert back.status_code == 303
        assert back.headers["location"] == next_url
        # The job board's request goes on: sign in, and the code comes back with email_verified true.
        to_login = await browser.get(back.headers["location"])
        login = await submit_login(
            browser, EMAIL, GOOD_PASSWORD, next_url=next_url, form_page=to_login.headers["location"]
        )
        assert login.status_code == 303
        done = await browser.get(login.headers["location"])
        code = query_of(done.headers["location"])["code"]
    async with running.client() as board:
        tokens = (await exchange(board, rp, code, verifier)).json()
        claims = await decode_id_token(board, tokens["id_token"])
        assert claims["email"] == EMAIL
        assert claims["email_verified"] is True
        info = await board.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert info.json()["email_verified"] is True
        # Used once.
        assert (await board.get(link)).status_code == 400


@pytest.fixture
async def open_running(start_app: StartApp, mail_settings: Callable[..., Settings]) -> Running:
    return await start_app(mail_settings(signup="open"))


async def test_enumeration_safe(open_running: Running, smtp: SmtpServer) -> None:
    running = open_running
    await make_user(running.idp, email="taken@example.com")
    async with running.client() as c:
        taken = await sign_up(c, email="taken@example.com", password="another long passphrase here")
        fresh = await sign_up(c, email="fresh@example.com", password="another long passphrase here")
    assert taken.status_code == fresh.status_code == 200
    assert taken.text.replace("taken@example.com", "X") == fresh.text.replace("fresh@example.com", "X")
    assert await deliver_mail(running) == 2
    [notice] = smtp.inbox.to("taken@example.com")
    assert "already have one" in text_of(notice)
    assert not [u for u in links_in(notice) if "token=" in u]
    [welcome] = smtp.inbox.to("fresh@example.com")
    assert [u for u in links_in(welcome) if "/verify-email?token=" in u]
    # The existing account is untouched: its password still works.
    async with running.client() as c:
        assert (await submit_login(c, "taken@example.com", PASSWORD)).status_code == 303


async def test_not_verified_until_the_link_is_used(open_running: Running, smtp: SmtpServer) -> None:
    running = open_running
    async with running.client() as c:
        await sign_up(c)
        async with running.idp.db.transaction() as session:
            user = (await session.execute(select(User).where(User.email_norm == EMAIL))).scalar_one()
        assert user.email_verified is False
        link = await verification_link(running, smtp)
        page = await c.get(link)
        assert page.status_code == 200
        assert "confirmed" in page.text
    async with running.idp.db.transaction() as session:
        assert (await session.execute(select(User.email_verified).where(User.id == user.id))).scalar_one() is True


async def test_the_link_expires_after_24_hours(open_running: Running, smtp: SmtpServer, clock: FrozenClock) -> None:
    running = open_running
    async with running.client() as c:
        await sign_up(c)
        link = await verification_link(running, smtp)
        clock.advance(24 * 3600 + 1)
        assert (await c.get(link)).status_code == 400


async def test_send_again_within_the_limit(open_running: Running, smtp: SmtpServer) -> None:
    running = open_running
    async with running.client() as c:
        assert (await sign_up(c)).status_code == 200
        answers = []
        for _ in range(3):
            token = await csrf_token(c, "/signup/resend")
            answers.append((await c.post("/signup/resend", data={"email": EMAIL, "csrf_token": token})).status_code)
        assert answers == [200, 200, 429]
        # Unknown addresses get the same answers.
        unknown = []
        for _ in range(4):
            token = await csrf_token(c, "/signup/resend")
            unknown.append(
                (await c.post("/signup/resend", data={"email": "x@example.com", "csrf_token": token})).status_code
            )
        assert unknown == [200, 200, 200, 429]
    assert await deliver_mail(running) == 3  # the first and two more
    first, _, last = smtp.inbox.to(EMAIL)
    # Any link works; using one voids the others.
    link1 = next(u for u in links_in(first) if "token=" in u).removeprefix("http://testserver")
    link2 = next(u for u in links_in(last) if "token=" in u).removeprefix("http://testserver")
    async with running.client() as c:
        assert (await c.get(link2)).status_code == 200
        assert (await c.get(link1)).status_code == 400


@pytest.mark.parametrize(
    ("weak", "reason"),
    [
        ("short", "at least 8 characters"),
        ("password1234", "too common"),
        ("new.person@example.com!", "does not contain your email"),
    ],
)
async def test_weak_passwords_are_refused(open_running: Running, weak: str, reason: str) -> None:
    async with open_running.client() as c:
        refused = await sign_up(c, password=weak)
    assert refused.status_code == 400
    assert reason in refused.text
    assert await users(open_running) == 0


async def test_a_bad_address_is_refused(open_running: Running) -> None:
    async with open_running.client() as c:
        refused = await sign_up(c, email="not an address")
    assert refused.status_code == 400
    assert "valid email address" in refused.text


async def test_csrf_is_checked(open_running: Running) -> None:
    async with open_running.client() as c:
        await c.get("/signup")
        refused = await sign_up(c, csrf_token="0" * 64)
    assert refused.status_code == 403
    assert await users(open_running) == 0


async def test_policy(
    start_app: StartApp, mail_settings: Callable[..., Settings], make_settings: Callable[..., Settings]
) -> None:
    clients = await start_app(mail_settings())
    allowed = await make_client(clients.idp, "Open board", allow_signup=True)
    other = await make_client(clients.idp, "Closed board")
    async with clients.client() as c:
        assert (await c.get("/signup")).status_code == 404
        for rp, status in ((allowed, 200), (other, 404)):
            next_url = "/authorize?" + str(httpx.QueryParams(auth_params(rp)))
            assert (await c.get("/signup", params={"next": next_url})).status_code == status
        assert "Create an account" not in (await c.get("/login")).text
    closed = await start_app(mail_settings(signup="closed"))
    async with closed.client() as c:
        assert (await c.get("/signup")).status_code == 404
    no_mail = await start_app(make_settings(signup="open"))
    async with no_mail.client() as c:
        assert (await c.get("/signup")).status_code == 404
        assert (await sign_up(c, csrf_token=await csrf_token(c, "/login"))).status_code == 404


async def test_allow_signup_through_the_admin_api(start_app: StartApp, mail_settings: Callable[..., Settings]) -> None:
    running = await start_app(mail_settings())
    async with await admin_client(running) as admin:
        created = await admin.post(
            "/admin/api/clients",
            json={"name": "Board", "redirect_uris": ["https://jobs.example/callback"], "allow_signup": True},
        )
        assert created.status_code == 201
        assert created.json()["allow_signup"] is True
        client_id = created.json()["client_id"]
        rp = type("RP", (), {"client_id": client_id, "redirect_uri": "https://jobs.example/callback"})()
        next_url = "/authorize?" + str(httpx.QueryParams(auth_params(rp)))  # type: ignore[arg-type]
        async with running.client() as c:
            assert (await c.get("/signup", params={"next": next_url})).status_code == 200
            patched = await admin.patch(f"/admin/api/clients/{client_id}", json={"allow_signup": False})
            assert patched.json()["allow_signup"] is False
            assert (await c.get("/signup", params={"next": next_url})).status_code == 404


async def test_the_account_page_offers_to_send_the_link_again(open_running: Running, smtp: SmtpServer) -> None:
    running = open_running
    async with running.client() as c:
        await sign_up(c)
        assert (await submit_login(c, EMAIL, GOOD_PASSWORD)).status_code == 303
        page = await c.get("/account")
        assert 'id="email-unverified"' in page.text
        assert 'action="/signup/resend"' in page.text
        assert (
            await c.post("/signup/resend", data={"email": EMAIL, "csrf_token": csrf_from(page.text)})
        ).status_code == 200
        assert await deliver_mail(running) == 2
        link = next(u for u in links_in(smtp.inbox.to(EMAIL)[-1]) if "/verify-email?token=" in u)
        assert (await c.get(link.removeprefix("http://testserver"))).status_code == 200
        page = await c.get("/account")
        assert 'id="email-unverified"' not in page.text
        assert 'action="/signup/resend"' not in page.text
