"""Admin API on people: search, pages, create, get with two-step status, update, disable, delete, sign-out."""

from __future__ import annotations

import json

import httpx
from sqlalchemy import func, select

from idp.clock import FrozenClock
from idp.store.models import LoginSession, User
from tests.conftest import Running
from tests.support.admin import API, admin_client, assert_api_error, audit_events, refresh, tokens_for
from tests.support.mfa import enroll
from tests.support.oidc import make_client
from tests.support.pages import PASSWORD, csrf_from, make_user, submit_login

USER_FIELDS = {"id", "email", "name", "disabled", "created_at", "updated_at", "mfa", "roles", "passkeys"}


async def session_count(running: Running, user_id: str) -> int:
    async with running.idp.db.transaction() as session:
        query = select(func.count()).select_from(LoginSession).where(LoginSession.user_id == user_id)
        return int((await session.execute(query)).scalar_one())


async def test_create_a_user_and_get_it(running: Running, client: httpx.AsyncClient) -> None:
    async with await admin_client(running) as admin:
        created = await admin.post(
            f"{API}/users", json={"email": "Ann@Example.com", "name": "Ann", "password": "a fine long password"}
        )
        assert created.status_code == 201, created.text
        body = created.json()
        assert set(body) == USER_FIELDS
        assert (body["email"], body["name"], body["disabled"]) == ("Ann@Example.com", "Ann", False)
        assert body["mfa"] == {"enabled": False, "since": None, "backup_codes_left": 0}
        assert "a fine long password" not in created.text

        fetched = await admin.get(f"{API}/users/{body['id']}")
        assert fetched.status_code == 200
        assert fetched.json() == body
        # The person can sign in with the password the operator set.
        assert (await submit_login(client, "ann@example.com", "a fine long password")).status_code == 303

        without_password = await admin.post(f"{API}/users", json={"email": "nopw@example.com"})
        assert without_password.status_code == 201
    events = await audit_events(running, "admin.user_created")
    assert [(e.user_id, e.actor) for e in events] == [
        (body["id"], "admin:ops"),
        (without_password.json()["id"], "admin:ops"),
    ]


async def test_a_taken_email_in_another_case_is_409(running: Running) -> None:
    await make_user(running.idp, "taken@example.com")
    async with await admin_client(running) as admin:
        response = await admin.post(f"{API}/users", json={"email": "TAKEN@example.com"})
    assert_api_error(response, 409, "conflict")
    async with running.idp.db.transaction() as session:
        assert (await session.execute(select(func.count()).select_from(User))).scalar_one() == 1


async def test_search_by_email_ignores_case_and_finds_only_that_person(running: Running) -> None:
    ann = await make_user(running.idp, "ann@example.com")
    await make_user(running.idp, "bob@example.com")
    async with await admin_client(running) as admin:
        found = (await admin.get(f"{API}/users", params={"email": " ANN@example.com "})).json()
        none = (await admin.get(f"{API}/users", params={"email": "carl@example.com"})).json()
        everyone = (await admin.get(f"{API}/users")).json()
    assert [u["id"] for u in found["items"]] == [ann.id]
    assert found["next_cursor"] is None
    assert none == {"items": [], "next_cursor": None}
    assert {u["email"] for u in everyone["items"]} == {"ann@example.com", "bob@example.com"}


async def test_pages_follow_the_cursor_and_end(running: Running) -> None:
    ids = {(await make_user(running.idp, f"p{n}@example.com")).id for n in range(5)}
    seen: list[str] = []
    cursor = None
    pages = 0
    async with await admin_client(running) as admin:
        while True:
            params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
            page = (await admin.get(f"{API}/users", params=params)).json()
            pages += 1
            assert len(page["items"]) <= 2
            seen += [u["id"] for u in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
    assert pages == 3
    assert len(seen) == 5
    assert set(seen) == ids


async def test_get_shows_two_step_status_and_backup_codes_left_never_a_secret(
    running: Running, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    user = await make_user(running.idp)
    await submit_login(client, "person@example.com", PASSWORD)
    secret, codes = await enroll(client, clock.now())
    enabled_at = clock.now()
    # One backup code used at a later sign-in.
    async with running.client() as other:
        await submit_login(other, "person@example.com", PASSWORD)
        page = await other.get("/login/recovery")
        used = await other.post("/login/recovery", data={"code": codes[0], "csrf_token": csrf_from(page.text)})
        assert used.status_code == 200

    async with await admin_client(running) as admin:
        response = await admin.get(f"{API}/users/{user.id}")
        listed = await admin.get(f"{API}/users", params={"email": "person@example.com"})

    body = response.json()
    assert set(body) == USER_FIELDS
    assert body["mfa"]["enabled"] is True
    assert body["mfa"]["backup_codes_left"] == 7
    assert body["mfa"]["since"].startswith(enabled_at.isoformat()[:19])
    assert listed.json()["items"][0]["mfa"] == body["mfa"]
    for text in (response.text, listed.text):
        assert secret not in text
        assert not any(code in text for code in codes)
        assert PASSWORD not in text
        assert "hash" not in text


async def test_rename_and_the_audit_event(running: Running) -> None:
    user = await make_user(running.idp, name="Old")
    async with await admin_client(running) as admin:
        response = await admin.patch(f"{API}/users/{user.id}", json={"name": "  New Name  "})
        unchanged = await admin.patch(f"{API}/users/{user.id}", json={})
    assert response.status_code == 200
    assert response.json()["name"] == "New Name"
    assert response.json()["disabled"] is False
    assert unchanged.json()["name"] == "New Name"
    event = (await audit_events(running, "admin.user_updated"))[0]
    assert (event.actor, event.user_id, event.client_ip) == ("admin:ops", user.id, "198.51.100.7")
    assert json.loads(event.details)["fields"] == ["name"]


async def test_disabling_ends_sessions_and_tokens_and_sign_in(running: Running, client: httpx.AsyncClient) -> None:
    user = await make_user(running.idp)
    rp = await make_client(running.idp)
    tokens = await tokens_for(running, client, rp)
    assert await session_count(running, user.id) == 1

    async with await admin_client(running) as admin:
        response = await admin.patch(f"{API}/users/{user.id}", json={"disabled": True})
        assert response.status_code == 200
        assert response.json()["disabled"] is True

        assert await session_count(running, user.id) == 0
        assert (await client.get("/account")).status_code == 303
        dead = await refresh(running, rp, tokens["refresh_token"])
        assert dead.status_code == 400
        assert dead.json()["error"] == "invalid_grant"
        async with running.client() as backend:
            info = await backend.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
            assert info.status_code == 401
        async with running.client() as browser:
            assert (await submit_login(browser, "person@example.com", PASSWORD)).status_code == 400

        enabled = await admin.patch(f"{API}/users/{user.id}", json={"disabled": False})
        assert enabled.json()["disabled"] is False
    async with running.client() as browser:
        assert (await submit_login(browser, "person@example.com", PASSWORD)).status_code == 303
    disable_event = (await audit_events(running, "admin.user_updated"))[0]
    details = json.loads(disable_event.details)
    assert details["fields"] == ["disabled"]
    assert details["sessions_ended"] == 1
    assert details["revoked"] >= 2  # the access and the refresh token


async def test_delete_a_user(running: Running, client: httpx.AsyncClient) -> None:
    user = await make_user(running.idp)
    await submit_login(client, "person@example.com", PASSWORD)
    async with await admin_client(running) as admin:
        response = await admin.delete(f"{API}/users/{user.id}")
        assert response.status_code == 204
        assert response.content == b""
        assert_api_error(await admin.get(f"{API}/users/{user.id}"), 404, "not_found")
        assert_api_error(await admin.delete(f"{API}/users/{user.id}"), 404, "not_found")
    assert (await client.get("/account")).status_code == 303
    assert await session_count(running, user.id) == 0
    async with running.client() as browser:
        assert (await submit_login(browser, "person@example.com", PASSWORD)).status_code == 400
    events = await audit_events(running, "admin.user_deleted")
    assert [(e.user_id, e.actor) for e in events] == [(user.id, "admin:ops")]


async def test_revoke_sessions_signs_the_person_out_everywhere(running: Running, client: httpx.AsyncClient) -> None:
    user = await make_user(running.idp)
    bystander = await make_user(running.idp, "bystander@example.com")
    rp = await make_client(running.idp)
    tokens = await tokens_for(running, client, rp)
    async with running.client() as other_browser:
        await submit_login(other_browser, "bystander@example.com", PASSWORD)

        async with await admin_client(running) as admin:
            response = await admin.post(f"{API}/users/{user.id}/sessions/revoke")
            assert response.status_code == 204
            assert_api_error(await admin.post(f"{API}/users/nobody/sessions/revoke"), 404, "not_found")

        assert (await client.get("/account")).status_code == 303
        assert (await refresh(running, rp, tokens["refresh_token"])).json()["error"] == "invalid_grant"
        # Nobody else is signed out.
        assert (await other_browser.get("/account")).status_code == 200
        assert await session_count(running, bystander.id) == 1
    # The person can sign in again: nothing else changed.
    async with running.client() as browser:
        assert (await submit_login(browser, "person@example.com", PASSWORD)).status_code == 303
    event = (await audit_events(running, "admin.sessions_revoked"))[0]
    assert (event.user_id, event.actor) == (user.id, "admin:ops")
    assert json.loads(event.details)["sessions_ended"] == 1
