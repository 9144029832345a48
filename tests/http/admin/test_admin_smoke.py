"""Admin API basics: bearer tokens, the OpenAPI document, a user's lifecycle and the assisted MFA reset."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from idp.store.models import AuditEvent
from tests.conftest import Running
from tests.support.pages import PASSWORD, make_user, submit_login


async def admin_client(running: Running) -> httpx.AsyncClient:
    _, token = await running.idp.admin_tokens.create("ops")
    client = running.client()
    client.headers["Authorization"] = f"Bearer {token}"
    return client


async def test_no_or_wrong_token_is_401(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer idpadm_nope"}, {"Authorization": "Basic eDp5"}):
        response = await client.get("/admin/api/users", headers=headers)
        assert response.status_code == 401
        assert response.json()["error"] == "unauthorized"


async def test_openapi_document_is_generated(running: Running) -> None:
    async with await admin_client(running) as admin:
        doc = (await admin.get("/admin/api/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    assert "/admin/api/users/{user_id}/mfa/reset" in doc["paths"]
    assert "UserOut" in doc["components"]["schemas"]


async def test_user_lifecycle_and_mfa_reset(running: Running, client: httpx.AsyncClient) -> None:
    user = await make_user(running.idp)
    await submit_login(client, "person@example.com", PASSWORD)
    assert (await client.get("/account")).status_code == 200
    async with await admin_client(running) as admin:
        found = (await admin.get("/admin/api/users", params={"email": "PERSON@example.com"})).json()
        assert [u["id"] for u in found["items"]] == [user.id]
        assert found["items"][0]["mfa"] == {"enabled": False, "since": None, "backup_codes_left": 0}
        no_reason = await admin.post(f"/admin/api/users/{user.id}/mfa/reset", json={})
        assert no_reason.status_code == 422
        reset = await admin.post(f"/admin/api/users/{user.id}/mfa/reset", json={"reason": "passport checked"})
        assert reset.status_code == 200
        assert reset.json()["id"] == user.id
        assert (await admin.patch(f"/admin/api/users/{user.id}", json={"name": "New"})).json()["name"] == "New"
        assert (await admin.patch(f"/admin/api/users/{user.id}", json={"nope": 1})).status_code == 422
        assert (
            await admin.post("/admin/api/users", content=b"{", headers={"content-type": "application/json"})
        ).status_code == 400
        assert (await admin.get("/admin/api/users/unknown")).status_code == 404
    assert (await client.get("/account")).status_code == 303
    async with running.idp.db.transaction() as session:
        event = (await session.execute(select(AuditEvent).where(AuditEvent.type == "admin.mfa_reset"))).scalar_one()
    assert event.actor == "admin:ops"
    assert "passport checked" in event.details
