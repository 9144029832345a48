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
