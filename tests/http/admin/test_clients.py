"""Admin API on relying parties: register, list, get, change, rotate the secret, delete (its tokens die too)."""

from __future__ import annotations

import json

import httpx
from sqlalchemy import select

from idp.store.models import Client, Token
from tests.conftest import Running
from tests.support.admin import API, admin_client, assert_api_error, audit_events, refresh, tokens_for
from tests.support.oidc import REDIRECT_URI, RegisteredClient, make_client
from tests.support.pages import make_user
from tests.support.wire import assert_json_error

CLIENT_FIELDS = {
    "client_id",
    "name",
    "public",
    "redirect_uris",
    "post_logout_redirect_uris",
    "backchannel_logout_uri",
    "grant_types",
    "require_mfa",
    "require_consent",
    "id_token_signed_response_alg",
    "scope",
    "allow_signup",
    "client_name",
    "logo_uri",
    "client_uri",
}
JOB_BOARD = {
    "name": "Nordic Jobs",
    "redirect_uris": ["https://jobs.example/callback"],
    "post_logout_redirect_uris": ["https://jobs.example/signed-out"],
    "require_mfa": True,
}


async def client_credentials(running: Running, client_id: str, secret: str) -> httpx.Response:
    async with running.client() as backend:
        return await backend.post("/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))


async def test_register_a_job_board_and_read_it_back(running: Running) -> None:
    async with await admin_client(running) as admin:
        created = await admin.post(f"{API}/clients", json=JOB_BOARD)
        assert created.status_code == 201, created.text
        body = created.json()
        assert set(body) == CLIENT_FIELDS | {"client_secret"}
        assert body["client_secret"]
        assert body["public"] is False
        assert body["grant_types"] == ["authorization_code", "refresh_token"]
        assert body["require_mfa"] is True
        assert body["id_token_signed_response_alg"] == "RS256"

        fetched = await admin.get(f"{API}/clients/{body['client_id']}")
        listed = await admin.get(f"{API}/clients")
    assert fetched.status_code == 200
    assert fetched.json() == {k: v for k, v in body.items() if k != "client_secret"}
    assert listed.json()["items"] == [fetched.json()]
    # The secret is shown once: never again, and stored only as a hash.
    assert body["client_secret"] not in fetched.text + listed.text
    async with running.idp.db.transaction() as session:
        row = (await session.execute(select(Client))).scalar_one()
    assert row.secret_hash != body["client_secret"]
    assert body["client_secret"] not in (row.secret_hash or "")
    events = await audit_events(running, "admin.client_created")
    assert [(e.actor, json.loads(e.details)) for e in events] == [("admin:ops", {"client_id": body["client_id"]})]


async def test_a_public_client_has_no_secret(running: Running) -> None:
    async with await admin_client(running) as admin:
        created = await admin.post(
            f"{API}/clients",
            json={"name": "Mobile app", "public": True, "redirect_uris": ["com.example.jobs:/callback"]},
        )
        assert created.status_code == 201, created.text
        assert created.json()["client_secret"] is None
        rotate = await admin.post(f"{API}/clients/{created.json()['client_id']}/secret")
        doc = (await admin.get(f"{API}/openapi.json")).json()
    assert_api_error(rotate, 422, "invalid_request")
    assert "422" in doc["paths"][f"{API}/clients/{{client_id}}/secret"]["post"]["responses"]  # documented


async def test_list_pages_follow_the_cursor(running: Running) -> None:
    ids = {(await make_client(running.idp, f"Board {n}")).client_id for n in range(5)}
    seen: list[str] = []
    cursor = None
    async with await admin_client(running) as admin:
        for _ in range(10):
            params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
            page = (await admin.get(f"{API}/clients", params=params)).json()
            seen += [c["client_id"] for c in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
    assert seen == sorted(ids)


async def test_change_a_client(running: Running) -> None:
    rp = await make_client(running.idp)
    async with await admin_client(running) as admin:
        response = await admin.patch(
            f"{API}/clients/{rp.client_id}",
            json={
                "name": "Jobs (renamed)",
                "redirect_uris": ["https://jobs.example/callback", "https://jobs.example/cb2"],
                "require_mfa": True,
                "require_consent": True,
                "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
                "id_token_signed_response_alg": "ES256",
            },
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["name"] == "Jobs (renamed)"
        assert body["redirect_uris"] == ["https://jobs.example/callback", "https://jobs.example/cb2"]
        assert (body["require_mfa"], body["require_consent"]) == (True, True)
        assert body["id_token_signed_response_alg"] == "ES256"
        assert body["post_logout_redirect_uris"] == ["https://jobs.example/signed-out"]  # untouched
        assert (await admin.get(f"{API}/clients/{rp.client_id}")).json() == body
        assert_api_error(await admin.patch(f"{API}/clients/nope", json={"name": "x"}), 404, "not_found")
    event = (await audit_events(running, "admin.client_updated"))[0]
    assert json.loads(event.details)["fields"] == [
        "grant_types",
        "id_token_alg",
        "name",
        "redirect_uris",
        "require_consent",
        "require_mfa",
    ]


async def test_rotating_the_secret_retires_the_old_one_at_once(running: Running) -> None:
    service = await make_client(
        running.idp, "Back end", grant_types=["authorization_code", "refresh_token", "client_credentials"]
    )
    assert service.secret is not None
    assert (await client_credentials(running, service.client_id, service.secret)).status_code == 200

    async with await admin_client(running) as admin:
        response = await admin.post(f"{API}/clients/{service.client_id}/secret")
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"client_id", "client_secret"}
        assert body["client_id"] == service.client_id
        assert body["client_secret"] != service.secret
        assert body["client_secret"] not in (await admin.get(f"{API}/clients/{service.client_id}")).text

    old = await client_credentials(running, service.client_id, service.secret)
    assert_json_error(old, "invalid_client", 401)
    new = await client_credentials(running, service.client_id, body["client_secret"])
    assert new.status_code == 200, new.text
    assert new.json()["access_token"]
    events = await audit_events(running, "admin.client_secret_rotated")
    assert [(e.actor, json.loads(e.details)) for e in events] == [("admin:ops", {"client_id": service.client_id})]


async def test_deleting_a_client_revokes_its_tokens(running: Running, client: httpx.AsyncClient) -> None:
    await make_user(running.idp)
    rp = await make_client(running.idp)
    other = await make_client(running.idp, "Other board")
    tokens = await tokens_for(running, client, rp)
    other_tokens = await tokens_for(running, client, other)

    async with await admin_client(running) as admin:
        response = await admin.delete(f"{API}/clients/{rp.client_id}")
        assert response.status_code == 204
        assert_api_error(await admin.get(f"{API}/clients/{rp.client_id}"), 404, "not_found")
        assert_api_error(await admin.delete(f"{API}/clients/{rp.client_id}"), 404, "not_found")

    async with running.idp.db.transaction() as session:
        rows = (await session.execute(select(Token).where(Token.client_id == rp.client_id))).scalars().all()
    assert rows
    assert all(row.revoked_at is not None for row in rows)
    async with running.client() as backend:
        info = await backend.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert info.status_code == 401
        gone = await backend.post(
            "/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}, auth=rp.basic
        )
        assert_json_error(gone, "invalid_client", 401)
        # Introspected by another client: no longer active.
        introspected = await backend.post("/introspect", data={"token": tokens["access_token"]}, auth=other.basic)
        assert introspected.json() == {"active": False}
    # The other client's tokens live on.
    assert (await refresh(running, other, other_tokens["refresh_token"])).status_code == 200
    event = (await audit_events(running, "admin.client_deleted"))[0]
    assert json.loads(event.details) == {"client_id": rp.client_id, "revoked": len(rows)}


async def test_the_deleted_client_cannot_start_a_sign_in(running: Running, client: httpx.AsyncClient) -> None:
    rp = await make_client(running.idp)
    async with await admin_client(running) as admin:
        assert (await admin.delete(f"{API}/clients/{rp.client_id}")).status_code == 204
    ghost = RegisteredClient(rp.client_id, rp.secret, REDIRECT_URI)
    response = await client.get(
        "/authorize",
        params={"response_type": "code", "client_id": ghost.client_id, "redirect_uri": REDIRECT_URI, "scope": "openid"},
    )
    assert response.status_code == 400  # the error page: never a redirect to an unregistered client
    assert "location" not in response.headers


async def test_registered_scopes_are_created_shown_changed_and_checked(running: Running) -> None:
    service = {"name": "Back end", "grant_types": ["client_credentials"], "scope": "jobs.read  jobs.write jobs.read"}
    async with await admin_client(running) as admin:
        created = await admin.post(f"{API}/clients", json=service)
        assert created.status_code == 201, created.text
        client_id, secret = created.json()["client_id"], created.json()["client_secret"]
        assert created.json()["scope"] == "jobs.read jobs.write"
        assert (await admin.get(f"{API}/clients/{client_id}")).json()["scope"] == "jobs.read jobs.write"
        assert (await client_credentials(running, client_id, secret)).json()["scope"] == "jobs.read jobs.write"

        changed = await admin.patch(f"{API}/clients/{client_id}", json={"scope": "jobs.read"})
        assert changed.status_code == 200, changed.text
        assert changed.json()["scope"] == "jobs.read"
        assert (await admin.get(f"{API}/clients")).json()["items"][0]["scope"] == "jobs.read"
        assert (await client_credentials(running, client_id, secret)).json()["scope"] == "jobs.read"
        untouched = await admin.patch(f"{API}/clients/{client_id}", json={"name": "Back end 2"})
        assert untouched.json()["scope"] == "jobs.read"

        for bad in ("openid", "jobs.read email", 'jobs"read', "jobs\\read", "jøbs", "x" * 101, 7, ["jobs.read"]):
            assert_api_error(await admin.patch(f"{API}/clients/{client_id}", json={"scope": bad}), 422)
            assert_api_error(await admin.post(f"{API}/clients", json={**service, "scope": bad}), 422)
        cleared = await admin.patch(f"{API}/clients/{client_id}", json={"scope": ""})
        assert cleared.json()["scope"] == ""
        document = (await admin.get(f"{API}/openapi.json")).json()
    schemas = document["components"]["schemas"]
    assert {"ClientCreate", "ClientPatch", "ClientOut"} <= schemas.keys()
    assert all("scope" in schemas[name]["properties"] for name in ("ClientCreate", "ClientPatch", "ClientOut"))
    async with running.idp.db.transaction() as session:
        assert len((await session.execute(select(Client))).scalars().all()) == 1  # nothing half-written
