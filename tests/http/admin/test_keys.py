"""Admin API on signing keys: list (no private parts), rotate, retire (never the current signer)."""

from __future__ import annotations

import base64
import json

import httpx

from idp.clock import FrozenClock
from tests.conftest import Running
from tests.support.admin import API, admin_client, assert_api_error, audit_events, tokens_for
from tests.support.oidc import make_client
from tests.support.pages import make_user


def jws_kid(token: str) -> str:
    header = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


async def test_list_shows_one_signer_per_algorithm_and_nothing_private(running: Running) -> None:
    async with await admin_client(running) as admin:
        response = await admin.get(f"{API}/keys")
    assert response.status_code == 200
    items = response.json()["items"]
    assert sorted(k["alg"] for k in items) == ["ES256", "RS256"]
    assert all(set(k) == {"kid", "alg", "created_at", "signing"} for k in items)
    assert all(k["signing"] for k in items)
    for private_member in ('"d"', '"p"', '"q"', "PRIVATE KEY"):
        assert private_member not in response.text


async def test_rotate_then_retire_the_old_keys(running: Running, client: httpx.AsyncClient, clock: FrozenClock) -> None:
    await make_user(running.idp)
    rp = await make_client(running.idp)
    async with await admin_client(running) as admin:
        old = {k["alg"]: k["kid"] for k in (await admin.get(f"{API}/keys")).json()["items"]}
        clock.advance(5)

        rotated = await admin.post(f"{API}/keys/rotate")
        assert rotated.status_code == 200
        items = rotated.json()["items"]
        assert len(items) == 4
        signers = {k["alg"]: k["kid"] for k in items if k["signing"]}
        assert set(signers) == {"RS256", "ES256"}
        assert not set(signers.values()) & set(old.values())
        # Old keys are still published, so tokens they signed still verify.
        jwks = {k["kid"] for k in (await client.get("/jwks")).json()["keys"]}
        assert jwks == {k["kid"] for k in items}
        tokens = await tokens_for(running, client, rp)
        assert jws_kid(tokens["id_token"]) == signers["RS256"]

        # The current signer cannot be retired.
        assert_api_error(await admin.post(f"{API}/keys/{signers['RS256']}/retire"), 409, "conflict")
        retired = await admin.post(f"{API}/keys/{old['RS256']}/retire")
        assert retired.status_code == 200
        assert old["RS256"] not in {k["kid"] for k in retired.json()["items"]}
        assert old["RS256"] not in {k["kid"] for k in (await client.get("/jwks")).json()["keys"]}
        assert_api_error(await admin.post(f"{API}/keys/{old['RS256']}/retire"), 404, "not_found")
        assert_api_error(await admin.post(f"{API}/keys/no-such-kid/retire"), 404, "not_found")
        assert len((await admin.get(f"{API}/keys")).json()["items"]) == 3

    rotated_event = (await audit_events(running, "admin.keys_rotated"))[0]
    assert rotated_event.actor == "admin:ops"
    assert sorted(json.loads(rotated_event.details)["kids"]) == sorted(signers.values())
    retired_events = await audit_events(running, "admin.key_retired")
    assert [(e.actor, json.loads(e.details)) for e in retired_events] == [("admin:ops", {"kid": old["RS256"]})]


async def test_list_has_the_interface_list_shape(running: Running) -> None:
    async with await admin_client(running) as admin:
        body = (await admin.get(f"{API}/keys")).json()
    assert set(body) == {"items", "next_cursor"}
    assert body["next_cursor"] is None


async def test_the_key_list_pages_with_limit_and_cursor(running: Running, clock: FrozenClock) -> None:
    async with await admin_client(running) as admin:
        clock.advance(5)
        await admin.post(f"{API}/keys/rotate")
        everything = (await admin.get(f"{API}/keys")).json()
        assert everything["next_cursor"] is None

        seen: list[str] = []
        params: dict[str, str] = {"limit": "3"}
        while True:
            page = await admin.get(f"{API}/keys", params=params)
            assert page.status_code == 200, page.text
            body = page.json()
            assert len(body["items"]) <= 3
            seen += [k["kid"] for k in body["items"]]
            if body["next_cursor"] is None:
                break
            params = {"limit": "3", "cursor": body["next_cursor"]}

        assert len(seen) == 4
        assert sorted(seen) == sorted(k["kid"] for k in everything["items"])
        assert_api_error(await admin.get(f"{API}/keys", params={"limit": "0"}), 422, "invalid_request")
        assert_api_error(await admin.get(f"{API}/keys", params={"cursor": "bm9wZQ"}), 400, "invalid_request")


async def test_the_openapi_document_lists_the_key_paging_parameters(running: Running) -> None:
    async with await admin_client(running) as admin:
        document = (await admin.get(f"{API}/openapi.json")).json()
    names = {p["name"] for p in document["paths"][f"{API}/keys"]["get"]["parameters"]}
    assert {"limit", "cursor"} <= names
