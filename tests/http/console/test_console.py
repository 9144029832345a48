"""The support console at /admin over HTTP (INTERFACE §5), on SQLite and PostgreSQL: who gets in, the support
actions and their audit entries, admin-only pages, CSRF on every action, re-authentication, no secret shown twice."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from idp.clock import FrozenClock
from idp.store.models import LoginSession
from tests.conftest import Running
from tests.http.console.conftest import StaffBrowser
from tests.support.admin import audit_events, dump_tables, refresh, tokens_for
from tests.support.mfa import authenticator_added_elsewhere
from tests.support.oidc import make_client
from tests.support.pages import PASSWORD, csrf_from, make_user, submit_login

REASON = "Lost phone; passport checked on a video call (ticket 4711)"
SUPPORT = "helper@staff.example"
ADMIN = "boss@staff.example"


def location(response: httpx.Response) -> tuple[str, dict[str, list[str]]]:
    assert response.status_code == 303, (response.status_code, response.text[:300])
    parts = urlsplit(response.headers["location"])
    return parts.path, parse_qs(parts.query)


async def test_anonymous_goes_to_sign_in_and_comes_back(client: httpx.AsyncClient) -> None:
    for path in ("/admin", "/admin/users/abc", "/admin/clients", "/admin/audit"):
        where, query = location(await client.get(path))
        assert where == "/login"
        assert query["next"] == [path]


async def test_no_role_is_403_everywhere(running: Running, staff_browser: StaffBrowser) -> None:
    seeker = await make_user(running.idp, "seeker@example.com")
    async with staff_browser("nobody@example.com", None) as browser:
        for path in ("/admin", f"/admin/users/{seeker.id}", f"/admin/users/{seeker.id}/reset-mfa", "/admin/keys"):
            page = await browser.get(path)
            assert page.status_code == 403, path
            assert "Staff only" in page.text
        csrf = csrf_from((await browser.get("/account/sessions")).text)
        before = await dump_tables(running, skip=("audit_events", "login_sessions"))
        for action in ("unlock", "sessions/revoke", "disable", "reset-mfa"):
            answer = await browser.post(
                f"/admin/users/{seeker.id}/{action}", data={"csrf_token": csrf, "reason": REASON}
            )
            assert answer.status_code == 403, action
        assert await dump_tables(running, skip=("audit_events", "login_sessions")) == before


async def test_password_only_staff_is_stepped_up(running: Running, staff_browser: StaffBrowser) -> None:
    """A staff member without an authenticator: to /login/verify, which sends them to enroll one first."""
    async with staff_browser(SUPPORT, "support", two_step=False) as browser:
        where, query = location(await browser.get("/admin"))
        assert (where, query["next"]) == ("/login/verify", ["/admin"])
        where, query = location(await browser.get("/login/verify?next=/admin"))
        assert (where, query["next"]) == ("/account/security/totp", ["/admin"])


async def test_staff_with_an_authenticator_but_a_password_only_session_is_asked_for_the_code(
    running: Running, clock: FrozenClock
) -> None:
    user = await make_user(running.idp, SUPPORT)
    await running.idp.users.set_role(user.id, "support", True, actor="test")
    await authenticator_added_elsewhere(running, user.id, clock.now())
    async with running.client() as browser:
        where, query = location(await browser.get("/admin"))
        assert where == "/login"
        where, query = location(await submit_login(browser, SUPPORT, PASSWORD, next_url=query["next"][0]))
        assert (where, query["next"]) == ("/login/verify", ["/admin"])
        # Half-way (password only, code not given yet): the console sends them to the code, nothing more.
        pending = await browser.get("/admin/users/anyone")
        assert location(pending) == ("/login/verify", {"next": ["/admin/users/anyone"]})


async def test_search_by_email_prefix_and_person_page(running: Running, staff_browser: StaffBrowser) -> None:
    seeker = await make_user(running.idp, "Seeker.One@example.com", name="Seeker One")
    await make_user(running.idp, "seeker_two@example.com")
    await make_user(running.idp, "other@example.com")
    async with staff_browser(SUPPORT, "support") as browser:
        found = await browser.get("/admin", params={"email": "SEEKER"})
        assert found.status_code == 200
        assert "Seeker.One@example.com" in found.text
        assert "seeker_two@example.com" in found.text
        assert "other@example.com" not in found.text
        # LIKE's wildcards are matched as themselves.
        only = await browser.get("/admin", params={"email": "seeker_"})
        assert "seeker_two@example.com" in only.text
        assert "Seeker.One" not in only.text
        assert "No one found" in (await browser.get("/admin", params={"email": "%"})).text

        page = await browser.get(f"/admin/users/{seeker.id}")
        assert page.status_code == 200
        assert "Seeker One" in page.text
        assert 'class="status off mfa-status"' in page.text
        assert (await browser.get("/admin/users/not-a-user")).status_code == 404
        assert (await browser.get("/admin/users/%00")).status_code == 404


async def test_search_by_external_id(running: Running, staff_browser: StaffBrowser) -> None:
    from idp.store.models import ExternalId

    seeker = await make_user(running.idp, "imported@example.com")
    board = await make_client(running.idp)
    async with running.idp.db.transaction() as session:
        session.add(
            ExternalId(
                client_id=board.client_id, external_id="jb-778", user_id=seeker.id, created_at=running.idp.clock.now()
            )
        )
    async with staff_browser(SUPPORT, "support") as browser:
        found = await browser.get("/admin", params={"external_id": "jb-778"})
        assert f'href="/admin/users/{seeker.id}"' in found.text


async def test_support_resets_two_step_verification_with_a_reason(
    running: Running, clock: FrozenClock, staff_browser: StaffBrowser
) -> None:
    seeker = await make_user(running.idp)
    board = await make_client(running.idp)
    async with running.client() as seeker_browser:
        # The seeker signed in at a job board, then set up an authenticator (elsewhere) and lost the phone.
        tokens = await tokens_for(running, seeker_browser, board)
        await authenticator_added_elsewhere(running, seeker.id, clock.now())
        async with staff_browser(SUPPORT, "support") as browser:
            person = await browser.get(f"/admin/users/{seeker.id}")
            assert 'class="status on mfa-status"' in person.text
            assert '<dd class="codes-left">8</dd>' in person.text
            confirm = await browser.get(f"/admin/users/{seeker.id}/reset-mfa")
            assert confirm.status_code == 200
            assert "Every backup code is removed (left now: 8)." in confirm.text
            assert "signed out everywhere (sessions now: 1)" in confirm.text
            csrf = csrf_from(confirm.text)
            # No reason: refused, nothing changed.
            refused = await browser.post(
                f"/admin/users/{seeker.id}/reset-mfa", data={"csrf_token": csrf, "reason": " "}
            )
            assert refused.status_code == 400
            assert (await running.idp.mfa.status(seeker.id)).enabled
            done = await browser.post(
                f"/admin/users/{seeker.id}/reset-mfa", data={"csrf_token": csrf, "reason": REASON}
            )
            where, query = location(done)
            assert (where, query["done"]) == (f"/admin/users/{seeker.id}", ["reset"])
            assert not (await running.idp.mfa.status(seeker.id)).enabled
            page = await browser.get(f"/admin/users/{seeker.id}?done=reset")
            assert "admin.mfa_reset" in page.text
            assert "Two-step verification is reset." in page.text
        # The seeker's sessions and refresh token ended with the reset.
        assert (await seeker_browser.get("/account")).status_code == 303
    assert (await refresh(running, board, tokens["refresh_token"])).json()["error"] == "invalid_grant"
    [event] = await audit_events(running, "admin.mfa_reset")
    staff = (await running.idp.users.search(SUPPORT, limit=1))[0]
    assert event.user_id == seeker.id
    assert event.actor == f"staff:{staff.id}:{SUPPORT}"
    assert event.client_ip == "198.51.100.7"
    assert REASON in event.details


async def test_support_actions_end_sessions_unlock_disable_and_enable(
    running: Running, staff_browser: StaffBrowser
) -> None:
    seeker = await make_user(running.idp)
    board = await make_client(running.idp)
    async with running.client() as seeker_browser:
        tokens = await tokens_for(running, seeker_browser, board)
        async with staff_browser(SUPPORT, "support") as browser:
            csrf = csrf_from((await browser.get(f"/admin/users/{seeker.id}")).text)
            for action, done in (("unlock", "unlocked"), ("sessions/revoke", "sessions"), ("disable", "disabled")):
                _where, query = location(
                    await browser.post(f"/admin/users/{seeker.id}/{action}", data={"csrf_token": csrf})
                )
                assert query["done"] == [done], action
            assert (await seeker_browser.get("/account")).status_code == 303
            assert (await refresh(running, board, tokens["refresh_token"])).json()["error"] == "invalid_grant"
            assert (await running.idp.users.load(seeker.id)).disabled
            location(await browser.post(f"/admin/users/{seeker.id}/enable", data={"csrf_token": csrf}))
            assert not (await running.idp.users.load(seeker.id)).disabled
    types = [e.type for e in await audit_events(running) if e.actor.startswith("staff:")]
    assert types == ["admin.user_unlocked", "admin.sessions_revoked", "admin.user_updated", "admin.user_updated"]


async def test_destructive_actions_need_a_recent_sign_in(
    running: Running, clock: FrozenClock, staff_browser: StaffBrowser
) -> None:
    seeker = await make_user(running.idp, "seeker@example.com")
    async with staff_browser(SUPPORT, "support") as browser:
        csrf = csrf_from((await browser.get(f"/admin/users/{seeker.id}")).text)
        clock.advance(16 * 60)
        before = await dump_tables(running, skip=("login_sessions",))
        for action in ("sessions/revoke", "disable", "reset-mfa"):
            answer = await browser.post(
                f"/admin/users/{seeker.id}/{action}", data={"csrf_token": csrf, "reason": REASON}
            )
            where, query = location(answer)
            assert where == "/login", action
            assert query["reauth"] == ["1"], action
            assert query["next"][0].startswith(f"/admin/users/{seeker.id}")
        assert await dump_tables(running, skip=("login_sessions",)) == before
        # Looking and unlocking need no fresh sign-in.
        assert (await browser.get(f"/admin/users/{seeker.id}")).status_code == 200
        location(await browser.post(f"/admin/users/{seeker.id}/unlock", data={"csrf_token": csrf}))


CONSOLE_POSTS = [
    "/admin/users/{user}/reset-mfa",
    "/admin/users/{user}/unlock",
    "/admin/users/{user}/password-reset",
    "/admin/users/{user}/sessions/revoke",
    "/admin/users/{user}/disable",
    "/admin/users/{user}/enable",
    "/admin/clients/new",
    "/admin/clients/{client}",
    "/admin/clients/{client}/secret",
    "/admin/keys/rotate",
    "/admin/keys/{kid}/retire",
    "/admin/tokens",
    "/admin/tokens/{token}/revoke",
]


@pytest.mark.parametrize("csrf", ["missing", "wrong"])
async def test_csrf_on_every_action(running: Running, staff_browser: StaffBrowser, csrf: str) -> None:
    seeker = await make_user(running.idp, "seeker@example.com")
    board = await make_client(running.idp)
    token, _ = await running.idp.admin_tokens.create("ops")
    kid = str(running.idp.key_ring.describe()[0]["kid"])
    async with staff_browser(ADMIN, "admin") as browser:
        await browser.get("/admin")
        before = await dump_tables(running, skip=("login_sessions",))
        for template in CONSOLE_POSTS:
            path = template.format(user=seeker.id, client=board.client_id, kid=kid, token=token.id)
            data = {"reason": REASON, "name": "x", "redirect_uris": "https://a.example/cb"}
            if csrf == "wrong":
                data["csrf_token"] = "0" * 64
            answer = await browser.post(path, data=data)
            assert answer.status_code == 403, path
        assert await dump_tables(running, skip=("login_sessions",)) == before


async def test_admin_pages_are_refused_to_support(running: Running, staff_browser: StaffBrowser) -> None:
    board = await make_client(running.idp)
    async with staff_browser(SUPPORT, "support") as browser:
        home = await browser.get("/admin")
        assert 'href="/admin/clients"' not in home.text
        for path in ("/admin/clients", "/admin/clients/new", f"/admin/clients/{board.client_id}", "/admin/keys"):
            assert (await browser.get(path)).status_code == 403, path
        assert (await browser.get("/admin/tokens")).status_code == 403
        assert (await browser.get("/admin/audit")).status_code == 403
        csrf = csrf_from(home.text) if "csrf_token" in home.text else csrf_from((await browser.get("/logout")).text)
        before = await dump_tables(running, skip=("login_sessions", "audit_events"))
        for path in ("/admin/keys/rotate", "/admin/tokens", f"/admin/clients/{board.client_id}/secret"):
            assert (await browser.post(path, data={"csrf_token": csrf, "name": "x"})).status_code == 403, path
        assert await dump_tables(running, skip=("login_sessions", "audit_events")) == before


SECRET = re.compile(r'id="client-secret">([^<]+)<')
TOKEN = re.compile(r'id="admin-token">([^<]+)<')


async def test_admin_manages_clients_keys_tokens_and_secrets_are_shown_once(
    running: Running, clock: FrozenClock, staff_browser: StaffBrowser
) -> None:
    async with staff_browser(ADMIN, "admin") as browser:
        form = await browser.get("/admin/clients/new")
        csrf = csrf_from(form.text)
        bad = await browser.post(
            "/admin/clients/new", data={"csrf_token": csrf, "name": "Board", "redirect_uris": "not a uri"}
        )
        assert bad.status_code == 400
        created = await browser.post(
            "/admin/clients/new",
            data={
                "csrf_token": csrf,
                "name": "Jobs Board",
                "redirect_uris": "https://jobs.example/cb\nhttps://jobs.example/cb2",
                "require_mfa": "1",
            },
        )
        assert created.status_code == 200
        assert created.headers["cache-control"] == "no-store"
        secret = SECRET.search(created.text)
        assert secret
        client_id = re.search(r'id="client-id">([^<]+)<', created.text)
        assert client_id
        info = await running.idp.clients.load(client_id.group(1))
        assert info.require_mfa
        assert info.redirect_uris == ("https://jobs.example/cb", "https://jobs.example/cb2")
        assert info.check_secret(secret.group(1))
        edit = await browser.get(f"/admin/clients/{info.client_id}")
        assert secret.group(1) not in edit.text
        saved = await browser.post(
            f"/admin/clients/{info.client_id}",
            data={
                "csrf_token": csrf,
                "name": "Jobs Board Two",
                "redirect_uris": "https://jobs.example/cb",
                "backchannel_logout_uri": "https://jobs.example/logout",
                "allow_signup": "1",
                "client_name": "Jobbnorge",
                "logo_uri": "https://jobs.example/logo.png",
                "client_uri": "https://jobs.example/",
            },
        )
        location(saved)
        info = await running.idp.clients.load(info.client_id)
        assert (info.client_name, info.logo_uri, info.client_uri) == (
            "Jobbnorge",
            "https://jobs.example/logo.png",
            "https://jobs.example/",
        )
        # A logo the browser would fetch over plain http is refused, and nothing changes.
        refused = await browser.post(
            f"/admin/clients/{info.client_id}",
            data={
                "csrf_token": csrf,
                "name": "Jobs Board Two",
                "redirect_uris": "https://jobs.example/cb",
                "backchannel_logout_uri": "https://jobs.example/logout",
                "allow_signup": "1",
                "client_name": "Jobbnorge",
                "logo_uri": "http://jobs.example/logo.png",
            },
        )
        assert refused.status_code == 400
        assert (await running.idp.clients.load(info.client_id)).logo_uri == "https://jobs.example/logo.png"
        info = await running.idp.clients.load(info.client_id)
        assert (info.name, info.redirect_uris, info.allow_signup, info.require_mfa) == (
            "Jobs Board Two",
            ("https://jobs.example/cb",),
            True,
            False,
        )
        assert info.backchannel_logout_uri == "https://jobs.example/logout"
        rotated = await browser.post(f"/admin/clients/{info.client_id}/secret", data={"csrf_token": csrf})
        new_secret = SECRET.search(rotated.text)
        assert new_secret
        assert new_secret.group(1) != secret.group(1)
        assert (await running.idp.clients.load(info.client_id)).check_secret(new_secret.group(1))
        listing = await browser.get("/admin/clients")
        assert "Jobs Board Two" in listing.text
        assert new_secret.group(1) not in listing.text

        # Keys: rotate, then retire an old one; the signer cannot be retired.
        old = [k["kid"] for k in running.idp.key_ring.describe()]
        clock.advance(1)  # the newest key signs; a frozen clock would make them all as new
        location(await browser.post("/admin/keys/rotate", data={"csrf_token": csrf}))
        keys = running.idp.key_ring.describe()
        signer = next(k["kid"] for k in keys if k["signing"])
        assert (await browser.post(f"/admin/keys/{signer}/retire", data={"csrf_token": csrf})).status_code == 409
        location(await browser.post(f"/admin/keys/{old[0]}/retire", data={"csrf_token": csrf}))
        assert old[0] not in [k["kid"] for k in running.idp.key_ring.describe()]

        # Admin tokens: created and shown once; the list never shows it; revoked.
        made = await browser.post("/admin/tokens", data={"csrf_token": csrf, "name": "deploy bot"})
        token = TOKEN.search(made.text)
        assert token
        assert await running.idp.admin_tokens.authenticate(token.group(1)) is not None
        listing = await browser.get("/admin/tokens")
        assert "deploy bot" in listing.text
        assert token.group(1) not in listing.text
        row = next(t for t in await running.idp.admin_tokens.list() if t.name == "deploy bot")
        location(await browser.post(f"/admin/tokens/{row.id}/revoke", data={"csrf_token": csrf}))
        assert await running.idp.admin_tokens.authenticate(token.group(1)) is None

        # The audit log: filters and paging, and no secret in it.
        audit = await browser.get("/admin/audit", params={"type": "admin.client_secret_rotated"})
        assert audit.status_code == 200
        full = await browser.get("/admin/audit")
        for value in (secret.group(1), new_secret.group(1), token.group(1)):
            assert value not in full.text
        assert "admin.keys_rotated" in full.text
        assert (await browser.get("/admin/audit", params={"since": "not a date"})).status_code == 200
    events = await audit_events(running)
    staff_events = [e for e in events if e.actor.startswith("staff:")]
    assert {e.type for e in staff_events} >= {
        "admin.client_created",
        "admin.client_updated",
        "admin.keys_rotated",
        "admin.key_retired",
        "admin.token_created",
        "admin.token_revoked",
    }
    assert {e.client_ip for e in staff_events} == {"198.51.100.7"}
    for e in events:
        for value in (secret.group(1), new_secret.group(1), token.group(1)):
            assert value not in e.details


async def test_audit_log_pages(running: Running, staff_browser: StaffBrowser) -> None:
    async with staff_browser(ADMIN, "admin") as browser:
        for n in range(60):
            await running.idp.login.unlock((await running.idp.users.search(ADMIN, limit=1))[0].id, actor=f"t{n}")
        first = await browser.get("/admin/audit", params={"type": "admin.user_unlocked"})
        assert first.text.count('class="event"') == 50
        older = re.search(r'href="(/admin/audit\?[^"]+)">', first.text.replace("&amp;", "&"))
        assert older
        second = await browser.get(older.group(1))
        assert second.text.count('class="event"') == 10


async def test_login_sessions_count_is_untouched_by_looking(running: Running, staff_browser: StaffBrowser) -> None:
    from sqlalchemy import func, select

    async with staff_browser(SUPPORT, "support") as browser:
        async with running.idp.db.transaction() as session:
            count = (await session.execute(select(func.count()).select_from(LoginSession))).scalar_one()
        assert (await browser.get("/admin")).status_code == 200
        async with running.idp.db.transaction() as session:
            assert (await session.execute(select(func.count()).select_from(LoginSession))).scalar_one() == count


async def test_without_email_no_reset_link_is_offered_or_sent(running: Running, staff_browser: StaffBrowser) -> None:
    seeker = await make_user(running.idp)
    async with staff_browser(SUPPORT, "support") as browser:
        page = await browser.get(f"/admin/users/{seeker.id}")
        assert "/password-reset" not in page.text
        refused = await browser.post(
            f"/admin/users/{seeker.id}/password-reset", data={"csrf_token": csrf_from(page.text)}
        )
        assert refused.status_code == 409
        assert "Email is off on this service" in refused.text
    assert await audit_events(running, "admin.password_reset_link") == []


async def test_signing_in_again_comes_back_and_the_action_then_works(running: Running, clock: FrozenClock) -> None:
    from tests.support.mfa import totp_code

    seeker = await make_user(running.idp)
    staff = await make_user(running.idp, SUPPORT)
    await running.idp.users.set_role(staff.id, "support", True, actor="test")
    secret = await authenticator_added_elsewhere(running, staff.id, clock.now())

    async def second_step(browser: httpx.AsyncClient, next_url: str) -> str:
        page = await browser.get("/login/verify", params={"next": next_url})
        data = {"code": totp_code(secret, clock.now()), "csrf_token": csrf_from(page.text), "next": next_url}
        where, _ = location(await browser.post("/login/verify", data=data))
        return where

    async with running.client() as browser:
        location(await submit_login(browser, SUPPORT, PASSWORD, next_url="/admin"))
        assert await second_step(browser, "/admin") == "/admin"
        csrf = csrf_from((await browser.get(f"/admin/users/{seeker.id}")).text)
        clock.advance(16 * 60)
        where, query = location(await browser.post(f"/admin/users/{seeker.id}/disable", data={"csrf_token": csrf}))
        assert where == "/login"
        back = query["next"][0]
        form = await browser.get("/login", params={"next": back, "reauth": "1"})
        assert form.status_code == 200
        clock.advance(31)  # the next time step: a code is accepted once
        where, query = location(
            await submit_login(browser, SUPPORT, PASSWORD, next_url=back, form_page="/login?reauth=1")
        )
        assert (where, query["next"]) == ("/login/verify", [back])
        assert await second_step(browser, back) == back
        csrf = csrf_from((await browser.get(back)).text)
        location(await browser.post(f"/admin/users/{seeker.id}/disable", data={"csrf_token": csrf}))
    assert (await running.idp.users.load(seeker.id)).disabled
