"""`/account/export` (issue #13): the person's data as a JSON download, never a secret."""

from __future__ import annotations

import json

import httpx

from idp.clock import FrozenClock
from idp.store.models import User
from tests.conftest import TEST_CLIENT_IP, Running
from tests.support.admin import audit_events, tokens_for
from tests.support.mfa import enroll
from tests.support.oidc import make_client
from tests.support.pages import PASSWORD, make_user, submit_login


async def test_the_download_holds_the_persons_data_and_no_secret(running: Running, clock: FrozenClock) -> None:
    person = await make_user(running.idp, name="Kari Nordmann")
    rp = await make_client(running.idp, name="Jobbsøk")
    async with running.client() as browser:
        assert (await submit_login(browser, person.email, PASSWORD)).status_code == 303
        secret, backup_codes = await enroll(browser, clock.now())
        tokens = await tokens_for(running, browser, rp, scope="openid email offline_access")
        assert "/account/export" in (await browser.get("/account")).text
        response = await browser.get("/account/export")
        cookies = [c.value for c in browser.cookies.jar]
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["content-disposition"] == 'attachment; filename="account-data.json"'
    assert response.headers["cache-control"] == "no-store"
    data = response.json()

    assert data["profile"]["sub"] == person.id
    assert data["profile"]["email"] == person.email
    assert data["profile"]["name"] == "Kari Nordmann"
    assert data["security"]["two_step_verification"]["enabled"] is True
    assert data["security"]["two_step_verification"]["backup_codes_left"] == 8
    [session] = data["sessions"]
    assert session["this_browser"] is True
    assert session["client_ip"] == TEST_CLIENT_IP
    assert session["job_boards"] == [{"client_id": rp.client_id, "name": "Jobbsøk"}]
    [board] = data["job_boards"]
    assert board["client_id"] == rp.client_id
    assert board["signed_in_until"] is not None
    types = {e["type"] for e in data["audit_events"]}
    assert {"login.success", "mfa.enabled"} <= types

    text = response.text
    async with running.idp.db.transaction() as db:
        stored = await db.get(User, person.id)
    assert stored is not None
    assert stored.password_hash
    for secret_value in [
        PASSWORD,
        stored.password_hash,
        secret,
        *backup_codes,
        tokens["access_token"],
        tokens["refresh_token"],
        tokens["id_token"],
        *cookies,
    ]:
        assert secret_value not in text
    for word in ("password_hash", "secret", "token"):
        assert word not in json.dumps(list(_keys(data)))
    assert [e.type for e in await audit_events(running, "account.exported")] == ["account.exported"]


def _keys(value: object) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


async def test_anonymous_visitors_go_to_sign_in(client: httpx.AsyncClient) -> None:
    response = await client.get("/account/export")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Faccount%2Fexport"
