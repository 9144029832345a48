"""INTERFACE §4 `/account/sessions`: each session with its browser, address, times, sign-in method and job boards;
signing out one (by its opaque id, with CSRF, only one's own) or every other; audited."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from idp.store.models import User
from tests.conftest import Running
from tests.support.admin import audit_events, refresh, tokens_for
from tests.support.oidc import RegisteredClient, decode_id_token, make_client
from tests.support.pages import PASSWORD, csrf_from, make_user, submit_login
from tests.support.wire import assert_json_error

FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1"
)


@dataclass
class Browsers:
    laptop: httpx.AsyncClient
    phone: httpx.AsyncClient
    person: User
    rp: RegisteredClient
    laptop_sid: str


@pytest.fixture
async def browsers(running: Running) -> AsyncIterator[Browsers]:
    """The person signed in on a Linux laptop (which signed into a job board) and on an iPhone."""
    person = await make_user(running.idp)
    rp = await make_client(running.idp, "Jobs North")
    async with running.client(ip="198.51.100.7") as laptop, running.client(ip="203.0.113.9") as phone:
        laptop.headers["User-Agent"] = FIREFOX_LINUX
        phone.headers["User-Agent"] = SAFARI_IPHONE
        assert (await submit_login(laptop, person.email, PASSWORD)).status_code == 303
        assert (await submit_login(phone, person.email, PASSWORD)).status_code == 303
        tokens = await tokens_for(running, laptop, rp, scope="openid")
        async with running.client() as backend:
            sid = (await decode_id_token(backend, tokens["id_token"]))["sid"]
        yield Browsers(laptop, phone, person, rp, sid)


def sessions_in(html: str) -> list[str]:
    return re.findall(r'name="session" value="([^"]+)"', html)


async def test_the_page_lists_each_session_in_words(browsers: Browsers) -> None:
    page = await browsers.phone.get("/account/sessions")

    assert page.status_code == 200
    text = page.text
    assert "Firefox on Linux" in text
    assert "Safari on iPhone" in text
    assert "198.51.100.7" in text
    assert "203.0.113.9" in text
    assert "Jobs North" in text
    assert "This browser" in text
    assert "UTC" in text
    assert "Password" in text
    laptop = text[text.index(f'id="session-{browsers.laptop_sid}"') :]
    assert "Firefox on Linux" in laptop.split("</li>")[0]
    assert "Jobs North" in laptop.split("</li>")[0]
    # The phone's own session comes first and is the one marked.
    assert sessions_in(text)[1] == browsers.laptop_sid
    assert "This browser" in text.split("</li>")[0]


async def test_signing_out_the_laptop_ends_its_session_and_its_online_refresh_token(
    running: Running, browsers: Browsers
) -> None:
    online = await tokens_for(running, browsers.laptop, browsers.rp, scope="openid")
    offline = await tokens_for(running, browsers.laptop, browsers.rp, scope="openid offline_access")
    page = await browsers.phone.get("/account/sessions")

    done = await browsers.phone.post(
        "/account/sessions/sign-out", data={"session": browsers.laptop_sid, "csrf_token": csrf_from(page.text)}
    )

    assert done.status_code == 303
    assert done.headers["location"] == "/account/sessions?done=one"
    assert (await browsers.laptop.get("/account")).status_code == 303  # the laptop's cookie no longer works
    assert (await browsers.phone.get("/account")).status_code == 200
    after = await browsers.phone.get(done.headers["location"])
    assert browsers.laptop_sid not in after.text
    assert "That session is signed out." in after.text
    assert_json_error(await refresh(running, browsers.rp, online["refresh_token"]), "invalid_grant")
    assert (await refresh(running, browsers.rp, offline["refresh_token"])).status_code == 200
    events = await audit_events(running, "session.signed_out")
    assert [(e.user_id, e.client_ip) for e in events] == [(browsers.person.id, "203.0.113.9")]
    assert browsers.laptop_sid not in events[0].details  # the id is not needed in the record


@pytest.mark.parametrize("token", [None, "0" * 64])
async def test_signing_out_needs_the_csrf_token(browsers: Browsers, token: str | None) -> None:
    form = {"session": browsers.laptop_sid} | ({"csrf_token": token} if token else {})

    assert (await browsers.phone.post("/account/sessions/sign-out", data=form)).status_code == 403
    assert (await browsers.phone.post("/account/sessions/sign-out-others", data=form)).status_code == 403
    assert (await browsers.laptop.get("/account")).status_code == 200


async def test_another_persons_session_cannot_be_signed_out(running: Running, browsers: Browsers) -> None:
    stranger = await make_user(running.idp, "stranger@example.com")
    async with running.client() as theirs:
        assert (await submit_login(theirs, stranger.email, PASSWORD)).status_code == 303
        page = await theirs.get("/account/sessions")
        assert browsers.laptop_sid not in page.text

        response = await theirs.post(
            "/account/sessions/sign-out", data={"session": browsers.laptop_sid, "csrf_token": csrf_from(page.text)}
        )
        unknown = await theirs.post(
            "/account/sessions/sign-out", data={"session": "x" * 32, "csrf_token": csrf_from(page.text)}
        )

    assert response.status_code == 404
    assert unknown.status_code == 404
    assert (await browsers.laptop.get("/account")).status_code == 200
    assert await audit_events(running, "session.signed_out") == []


async def test_sign_out_everywhere_else_keeps_this_browser(running: Running, browsers: Browsers) -> None:
    page = await browsers.phone.get("/account/sessions")
    assert "Sign out everywhere else" in page.text

    done = await browsers.phone.post("/account/sessions/sign-out-others", data={"csrf_token": csrf_from(page.text)})

    assert done.status_code == 303
    assert (await browsers.laptop.get("/account")).status_code == 303
    after = await browsers.phone.get(done.headers["location"])
    assert len(sessions_in(after.text)) == 1
    assert "Sign out everywhere else" not in after.text
    assert "You are signed out everywhere else." in after.text
    assert [e.user_id for e in await audit_events(running, "session.signed_out_elsewhere")] == [browsers.person.id]


async def test_signing_out_this_browser_from_the_page(browsers: Browsers) -> None:
    page = await browsers.phone.get("/account/sessions")
    mine = sessions_in(page.text)[0]

    done = await browsers.phone.post(
        "/account/sessions/sign-out", data={"session": mine, "csrf_token": csrf_from(page.text)}
    )

    assert done.status_code == 303
    assert done.headers["location"] == "/login"
    assert (await browsers.phone.get("/account")).status_code == 303
    assert (await browsers.laptop.get("/account")).status_code == 200


async def test_the_page_needs_a_sign_in_and_is_linked_from_the_account_pages(
    running: Running, browsers: Browsers
) -> None:
    async with running.client() as anonymous:
        response = await anonymous.get("/account/sessions")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=%2Faccount%2Fsessions")
    assert 'href="/account/sessions"' in (await browsers.phone.get("/account")).text
    assert 'href="/account/sessions"' in (await browsers.phone.get("/account/security")).text


async def test_the_page_speaks_bokmal(browsers: Browsers) -> None:
    page = await browsers.phone.get("/account/sessions", headers={"Accept-Language": "nb"})

    assert "Hvor du er logget inn" in page.text
    assert "Firefox på Linux" in page.text
