"""Operator-assisted recovery (INTERFACE §5): the reset's full effect on factors, sessions, tokens and the audit log."""

from __future__ import annotations

import html
import json
import re

import httpx
from sqlalchemy import func, select

from idp.clock import FrozenClock
from idp.store.models import BackupCode, LoginSession, TotpCredential
from tests.conftest import Running
from tests.support.admin import API, admin_client, assert_api_error, audit_events, refresh, tokens_for
from tests.support.mfa import codes_from, codes_page, confirm_saved, enroll, secret_from, totp_code
from tests.support.oidc import auth_params, decode_id_token, exchange, make_client, query_of
from tests.support.pages import PASSWORD, csrf_from, make_user, submit_login

REASON = "Lost phone; passport checked at the front desk (ticket 4711)"


async def rows(running: Running, model: type) -> int:
    async with running.idp.db.transaction() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def sign_in_with_code(browser: httpx.AsyncClient, secret: str, clock: FrozenClock) -> None:
    login = await submit_login(browser, "person@example.com", PASSWORD)
    assert login.headers["location"].startswith("/login/verify")
    page = await browser.get("/login/verify")
    done = await browser.post(
        "/login/verify", data={"code": totp_code(secret, clock.now()), "csrf_token": csrf_from(page.text)}
    )
    assert done.status_code == 303, done.text
    assert (await browser.get("/account")).status_code == 200


async def test_reset_removes_factors_ends_sessions_and_tokens_and_is_audited(
    running: Running, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    user = await make_user(running.idp)
    rp = await make_client(running.idp)
    strict = await make_client(running.idp, "Strict board", require_mfa=True)
    # The person enrolled an authenticator and has tokens at a job board from before the reset.
    await submit_login(client, "person@example.com", PASSWORD)
    old_secret, old_codes = await enroll(client, clock.now())
    tokens = await tokens_for(running, client, rp)
    async with running.client() as backend:
        assert (await decode_id_token(backend, tokens["id_token"]))["acr"] == "mfa"
    async with running.client() as phone:
        clock.advance(31)
        await sign_in_with_code(phone, old_secret, clock)
        assert await rows(running, LoginSession) == 2

        async with await admin_client(running, "helpdesk") as admin:
            response = await admin.post(f"{API}/users/{user.id}/mfa/reset", json={"reason": REASON})
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["id"] == user.id
            assert body["mfa"] == {"enabled": False, "since": None, "backup_codes_left": 0}
            assert (await admin.get(f"{API}/users/{user.id}")).json()["mfa"]["enabled"] is False

        # Authenticator and backup codes are gone.
        assert await rows(running, TotpCredential) == 0
        assert await rows(running, BackupCode) == 0
        # Every browser session is gone.
        assert await rows(running, LoginSession) == 0
        assert (await client.get("/account")).status_code == 303
        assert (await phone.get("/account")).status_code == 303
    # The refresh token issued before the reset is dead, and so is the access token.
    dead = await refresh(running, rp, tokens["refresh_token"])
    assert dead.status_code == 400
    assert dead.json()["error"] == "invalid_grant"
    async with running.client() as backend:
        info = await backend.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert info.status_code == 401
        introspected = await backend.post("/introspect", data={"token": tokens["refresh_token"]}, auth=rp.basic)
        assert introspected.json() == {"active": False}

    # The audit event says who and why.
    events = await audit_events(running, "admin.mfa_reset")
    assert len(events) == 1
    event = events[0]
    assert (event.actor, event.user_id, event.client_ip, event.outcome) == (
        "admin:helpdesk",
        user.id,
        "198.51.100.7",
        "success",
    )
    details = json.loads(event.details)
    assert details["reason"] == REASON
    assert details["sessions_ended"] == 2
    assert details["revoked"] >= 2

    # Next sign-in: the password alone, and /account/security says two-step verification is off.
    clock.advance(31)
    login = await submit_login(client, "person@example.com", PASSWORD)
    assert login.status_code == 303
    assert not login.headers["location"].startswith("/login/verify")
    security = await client.get("/account/security")
    assert 'id="mfa-status" class="status off"' in security.text
    assert "/account/security/totp" in security.text

    # A client with require_mfa takes them through enrollment again, with a new secret.
    start = await client.get("/authorize", params=auth_params(strict))
    assert start.headers["location"].startswith("/login/verify?")
    setup = await client.get(start.headers["location"])
    assert setup.headers["location"].startswith("/account/security/totp?")
    page = await client.get(setup.headers["location"])
    new_secret = secret_from(page.text)
    assert new_secret != old_secret
    next_value = re.search(r'name="next" value="([^"]+)"', page.text)
    assert next_value
    done = await client.post(
        "/account/security/totp",
        data={
            "code": totp_code(new_secret, clock.now()),
            "csrf_token": csrf_from(page.text),
            "next": html.unescape(next_value.group(1)),
        },
    )
    done = await codes_page(client, done)
    assert done.status_code == 200
    new_codes = codes_from(done.text)
    assert len(new_codes) == 8
    assert not set(new_codes) & set(old_codes)
    onward = await confirm_saved(client, done)
    final = await client.get(onward.headers["location"])
    answer = query_of(final.headers["location"])
    async with running.client() as backend:
        new_tokens = (await exchange(backend, strict, answer["code"])).json()
        claims = await decode_id_token(backend, new_tokens["id_token"])
    assert (claims["acr"], claims["amr"]) == ("mfa", ["pwd", "otp", "mfa"])

    # The old authenticator and the old backup codes are worth nothing now.
    async with running.client() as other:
        clock.advance(31)
        await submit_login(other, "person@example.com", PASSWORD)
        page = await other.get("/login/verify")
        old = await other.post(
            "/login/verify", data={"code": totp_code(old_secret, clock.now()), "csrf_token": csrf_from(page.text)}
        )
        assert old.status_code == 400
        page = await other.get("/login/recovery")
        old_backup = await other.post(
            "/login/recovery", data={"code": old_codes[1], "csrf_token": csrf_from(page.text)}
        )
        assert old_backup.status_code == 400
        assert (await other.get("/account")).status_code == 303


async def test_reset_of_a_person_without_two_step_still_signs_them_out(
    running: Running, client: httpx.AsyncClient
) -> None:
    user = await make_user(running.idp)
    await submit_login(client, "person@example.com", PASSWORD)
    async with await admin_client(running) as admin:
        response = await admin.post(f"{API}/users/{user.id}/mfa/reset", json={"reason": "asked by phone"})
    assert response.status_code == 200
    assert (await client.get("/account")).status_code == 303
    assert len(await audit_events(running, "admin.mfa_reset")) == 1


async def test_reset_needs_a_reason_and_a_known_person(
    running: Running, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    user = await make_user(running.idp)
    await submit_login(client, "person@example.com", PASSWORD)
    await enroll(client, clock.now())
    async with await admin_client(running) as admin:
        for body in ({}, {"reason": ""}, {"reason": "   "}, {"reason": None}, {"reason": 42}, {"reason": "x" * 501}):
            assert_api_error(await admin.post(f"{API}/users/{user.id}/mfa/reset", json=body), 422, "invalid_request")
        assert_api_error(
            await admin.post(f"{API}/users/no-such-user/mfa/reset", json={"reason": "checked"}), 404, "not_found"
        )
    # Nothing changed.
    assert await rows(running, TotpCredential) == 1
    assert await rows(running, BackupCode) == 8
    assert (await client.get("/account")).status_code == 200
    assert await audit_events(running, "admin.mfa_reset") == []
