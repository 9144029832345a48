"""`/account/email` with a real SMTP server (issue #13): a link to the new address, a notice to the old one, the
change made only when the link is used, single-use 24-hour links, and a taken address refused without telling."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

import httpx
import pytest

from idp.clock import FrozenClock
from idp.config import Settings
from idp.store import users as users_store
from tests.conftest import Running
from tests.http.account.conftest import deliver_mail
from tests.support.admin import audit_events
from tests.support.pages import PASSWORD, csrf_from, csrf_token, make_user, submit_login
from tests.support.smtp import SmtpServer, links_in, text_of

StartApp = Callable[[Settings], Coroutine[Any, Any, Running]]
OLD = "person@example.com"
NEW = "New.Address@example.com"
SUPPORT = "https://help.example.com/account-taken"


@pytest.fixture
async def running(start_app: StartApp, mail_settings: Callable[..., Settings]) -> Running:
    return await start_app(mail_settings(support_url=SUPPORT))


async def ask(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    token = await csrf_token(client, "/account/email")
    return await client.post("/account/email", data={"email": email, "password": password, "csrf_token": token})


async def change_link(running: Running, smtp: SmtpServer, to: str = NEW) -> str:
    assert await deliver_mail(running) >= 1
    [link] = [u for u in links_in(smtp.inbox.to(to)[-1]) if "/account/email/confirm?token=" in u]
    return link.removeprefix("http://testserver")


async def use(client: httpx.AsyncClient, link: str) -> httpx.Response:
    page = await client.get(link)
    if page.status_code != 200:
        return page
    token = link.split("token=", 1)[1]
    return await client.post("/account/email/confirm", data={"token": token, "csrf_token": csrf_from(page.text)})


async def test_the_link_to_the_new_address_changes_it_and_the_old_address_is_told(
    running: Running, smtp: SmtpServer
) -> None:
    person = await make_user(running.idp)
    async with running.client() as here, running.client() as elsewhere:
        assert (await submit_login(here, OLD, PASSWORD)).status_code == 303
        assert (await submit_login(elsewhere, OLD, PASSWORD)).status_code == 303
        sent = await ask(here, NEW)
        assert sent.status_code == 200, sent.text
        assert NEW in sent.text
        link = await change_link(running, smtp)
        assert smtp.inbox.to(OLD) == []  # nothing yet: nothing has changed
        async with running.client() as c:  # until the link is used, the old address signs in
            assert (await submit_login(c, OLD, PASSWORD)).status_code == 303

        # Opened in another browser (the phone's mail app): the page asks, the button does it.
        async with running.client() as phone:
            confirm = await phone.get(link)
            assert confirm.status_code == 200
            assert NEW in confirm.text
            async with running.idp.db.transaction() as session:
                assert (await users_store.find_user(session, person.id)).email == OLD  # type: ignore[union-attr]  # the row exists
            done = await use(phone, link)
            assert done.status_code == 200, done.text
            assert "Your email address is now" in done.text
            assert (await use(phone, link)).status_code == 400  # single use

        # Sessions go on (the address names the account; it is no credential).
        assert (await elsewhere.get("/account")).status_code == 200
        account = await here.get("/account")
        assert NEW in account.text
        assert "not confirmed yet" not in account.text

    async with running.idp.db.transaction() as session:
        user = await users_store.find_user(session, person.id)
    assert user is not None
    assert (user.email, user.email_norm, user.email_verified) == (NEW, NEW.casefold(), True)
    async with running.client() as c:
        assert (await submit_login(c, OLD, PASSWORD)).status_code == 400
        assert (await submit_login(c, NEW.lower(), PASSWORD)).status_code == 303

    assert await deliver_mail(running) == 1
    [notice] = smtp.inbox.to(OLD)
    assert NEW in text_of(notice)
    assert SUPPORT in text_of(notice)
    types = [e.type for e in await audit_events(running) if e.user_id == person.id]
    assert "email.change_requested" in types
    assert "email.changed" in types


async def test_the_link_expires_after_a_day(running: Running, smtp: SmtpServer, clock: FrozenClock) -> None:
    await make_user(running.idp)
    async with running.client() as c:
        assert (await submit_login(c, OLD, PASSWORD)).status_code == 303
        assert (await ask(c, NEW)).status_code == 200
        link = await change_link(running, smtp)
        clock.advance(timedelta(hours=24, seconds=1).total_seconds())
        expired = await c.get(link)
        assert expired.status_code == 400
        assert "This link does not work" in expired.text
        assert 'href="/account/email"' in expired.text  # a new change, not a new password link
        token = link.split("token=", 1)[1]
        posted = await c.post("/account/email/confirm", data={"token": token, "csrf_token": await csrf_token(c)})
        assert posted.status_code == 400
    async with running.client() as c:
        assert (await submit_login(c, OLD, PASSWORD)).status_code == 303


async def test_a_newer_change_voids_the_older_link(running: Running, smtp: SmtpServer) -> None:
    await make_user(running.idp)
    async with running.client() as c:
        assert (await submit_login(c, OLD, PASSWORD)).status_code == 303
        assert (await ask(c, "first@example.com")).status_code == 200
        first = await change_link(running, smtp, "first@example.com")
        assert (await ask(c, "second@example.com")).status_code == 200
        second = await change_link(running, smtp, "second@example.com")
        assert (await use(c, second)).status_code == 200
        assert (await use(c, first)).status_code == 400


async def test_a_taken_address_gets_the_same_answer_and_its_owner_an_email(running: Running, smtp: SmtpServer) -> None:
    await make_user(running.idp)
    other = await make_user(running.idp, "taken@example.com")
    async with running.client() as c:
        assert (await submit_login(c, OLD, PASSWORD)).status_code == 303
        free = await ask(c, "free@example.com")
        taken = await ask(c, "taken@example.com")
    assert free.status_code == taken.status_code == 200
    assert free.text.replace("free@example.com", "X") == taken.text.replace("taken@example.com", "X")
    assert await deliver_mail(running) == 2
    # The requester's own audit events (which their data export shows) say the same for both.
    asked = [e for e in await audit_events(running) if e.type == "email.change_requested"]
    assert len(asked) == 2
    assert asked[0].details == asked[1].details
    [attempt] = await audit_events(running, "email.change_to_taken_address")
    assert attempt.user_id == other.id
    [told] = smtp.inbox.to("taken@example.com")
    assert "already has an account" in text_of(told)
    assert not [u for u in links_in(told) if "token=" in u]  # no link to move anything
    async with running.idp.db.transaction() as session:
        assert (await users_store.find_user(session, other.id)).email == "taken@example.com"  # type: ignore[union-attr]  # the row exists


async def test_an_address_taken_before_the_link_is_used_is_refused_and_nothing_changes(
    running: Running, smtp: SmtpServer
) -> None:
    person = await make_user(running.idp)
    async with running.client() as c:
        assert (await submit_login(c, OLD, PASSWORD)).status_code == 303
        assert (await ask(c, NEW)).status_code == 200
        link = await change_link(running, smtp)
        await make_user(running.idp, NEW.upper())  # someone signs up with it meanwhile
        refused = await use(c, link)
        assert refused.status_code == 409
        assert "Another account now uses this email address" in refused.text
    async with running.idp.db.transaction() as session:
        user = await users_store.find_user(session, person.id)
    assert user is not None
    assert user.email == OLD
    assert smtp.inbox.to(OLD) == []


async def test_wrong_password_same_or_bad_address_and_csrf_are_refused(running: Running, smtp: SmtpServer) -> None:
    await make_user(running.idp)
    async with running.client() as c:
        assert (await submit_login(c, OLD, PASSWORD)).status_code == 303
        wrong = await ask(c, NEW, "not my password at all")
        assert wrong.status_code == 400
        assert "current password is not correct" in wrong.text
        same = await ask(c, OLD.upper())
        assert same.status_code == 400
        assert "already your email address" in same.text
        bad = await ask(c, "not an address")
        assert bad.status_code == 400
        assert "valid email address" in bad.text
        forged = await c.post("/account/email", data={"email": NEW, "password": PASSWORD, "csrf_token": "0" * 64})
        assert forged.status_code == 403
        for _ in range(5):
            await ask(c, NEW, "not my password at all")
        assert (await ask(c, NEW)).status_code == 429  # wrong passwords count like wrong sign-ins
    assert await deliver_mail(running) == 0
    assert smtp.inbox.messages == []


async def test_anonymous_visitors_go_to_sign_in(running: Running) -> None:
    async with running.client() as c:
        page = await c.get("/account/email")
        assert page.status_code == 303
        assert page.headers["location"] == "/login?next=%2Faccount%2Femail"
        posted = await c.post(
            "/account/email", data={"email": NEW, "password": PASSWORD, "csrf_token": await csrf_token(c)}
        )
        assert posted.status_code == 303


async def test_off_without_email(start_app: StartApp, make_settings: Callable[..., Settings]) -> None:
    running = await start_app(make_settings())
    await make_user(running.idp)
    async with running.client() as c:
        assert (await submit_login(c, OLD, PASSWORD)).status_code == 303
        assert (await c.get("/account/email")).status_code == 404
        assert "/account/email" not in (await c.get("/account")).text
