"""Discovery metadata (OIDC Discovery §3), the JWKS (RFC 7517), ES256 ID tokens and signing-key rotation."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import pytest
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import select

from idp.clock import FrozenClock
from idp.config import Settings
from idp.errors import Conflict
from idp.store.models import SigningKey
from tests.conftest import Running
from tests.support.oidc import RegisteredClient, auth_params, exchange, make_client, pkce_pair, query_of
from tests.support.pages import PASSWORD, make_user, submit_login

ISSUER = "http://testserver"
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

StartApp = Callable[[Settings], Coroutine[Any, Any, Running]]


async def jwks_of(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get("/jwks")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def kids(jwks: dict[str, Any]) -> set[str]:
    return {key["kid"] for key in jwks["keys"]}


def header_of(token: str) -> dict[str, Any]:
    return jws.extract_compact(token.encode()).protected


async def new_id_token(running: Running, client: RegisteredClient) -> str:
    """Sign in (if needed) and run the code flow; the ID token the RP receives."""
    async with running.client() as browser:
        assert (await submit_login(browser, "person@example.com", PASSWORD)).status_code == 303
        verifier, challenge = pkce_pair()
        response = await browser.get("/authorize", params=auth_params(client, challenge))
        code = query_of(response.headers["location"])["code"]
    async with running.client() as backend:
        tokens = await exchange(backend, client, code, verifier)
    assert tokens.status_code == 200, tokens.text
    return tokens.json()["id_token"]  # type: ignore[no-any-return]


def verify(token: str, jwks: dict[str, Any]) -> dict[str, Any]:
    return jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["RS256", "ES256"]).claims


# -- discovery ------------------------------------------------------------------------------------------


async def test_discovery_lists_every_field_of_the_interface(client: httpx.AsyncClient) -> None:
    response = await client.get("/.well-known/openid-configuration")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    meta = response.json()
    assert meta["issuer"] == ISSUER
    for name in (
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "end_session_endpoint",
        "introspection_endpoint",
        "revocation_endpoint",
    ):
        assert meta[name].startswith(ISSUER + "/"), name
    assert {"openid", "profile", "email", "offline_access"} <= set(meta["scopes_supported"])
    assert meta["response_types_supported"] == ["code"]
    assert {"authorization_code", "refresh_token", "client_credentials"} <= set(meta["grant_types_supported"])
    assert meta["subject_types_supported"]
    assert meta["id_token_signing_alg_values_supported"][0] == "RS256"
    assert "ES256" in meta["id_token_signing_alg_values_supported"]
    assert {"client_secret_basic", "client_secret_post", "none"} <= set(meta["token_endpoint_auth_methods_supported"])
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert {"amr", "acr", "auth_time", "sub"} <= set(meta["claims_supported"])
    assert {"pwd", "mfa"} <= set(meta["acr_values_supported"])
    assert {"none", "login", "consent"} <= set(meta["prompt_values_supported"])
    assert {"en", "nb"} <= set(meta["ui_locales_supported"])


async def test_discovery_endpoints_answer(client: httpx.AsyncClient) -> None:
    """Every advertised endpoint exists at the path it names (the path under the issuer)."""
    meta = (await client.get("/.well-known/openid-configuration")).json()

    assert (await client.get(meta["jwks_uri"].removeprefix(ISSUER))).status_code == 200
    # A form with nothing of ours: the token endpoint first wants grant_type; the other two first want a client.
    expected = {
        "token_endpoint": (400, "invalid_request"),
        "introspection_endpoint": (401, "invalid_client"),
        "revocation_endpoint": (401, "invalid_client"),
    }
    for name, (status, error) in expected.items():
        response = await client.post(meta[name].removeprefix(ISSUER), data={"unrelated": "1"})
        assert (response.status_code, response.json()["error"]) == (status, error), name
    userinfo = await client.get(meta["userinfo_endpoint"].removeprefix(ISSUER))
    assert userinfo.status_code == 401
    assert userinfo.headers["www-authenticate"] == 'Bearer realm="idp"'


async def test_discovery_and_jwks_may_be_cached(client: httpx.AsyncClient) -> None:
    for path in ("/.well-known/openid-configuration", "/jwks"):
        cache = (await client.get(path)).headers["cache-control"]
        assert "max-age=" in cache, path
        assert "no-store" not in cache


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/jwks"])
async def test_discovery_and_jwks_answer_304_to_a_matching_etag(client: httpx.AsyncClient, path: str) -> None:
    first = await client.get(path)
    etag = first.headers["etag"]
    assert etag.startswith('"')
    assert etag.endswith('"')

    for if_none_match in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = await client.get(path, headers={"If-None-Match": if_none_match})
        assert again.status_code == 304, if_none_match
        assert again.content == b""
        assert again.headers["etag"] == etag
        assert "max-age=" in again.headers["cache-control"]
    stale = await client.get(path, headers={"If-None-Match": '"not-the-current-one"'})
    assert stale.status_code == 200
    assert stale.content == first.content


async def test_the_jwks_etag_changes_with_a_rotation(running: Running, clock: FrozenClock) -> None:
    async with running.client() as http:
        before = await http.get("/jwks")
        clock.advance(60)
        await running.idp.key_ring.rotate()
        after = await http.get("/jwks", headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200
    assert after.headers["etag"] != before.headers["etag"]
    assert kids(after.json()) > kids(before.json())


# -- the JWKS ----------------------------------------------------------------------------------------------


async def test_jwks_publishes_public_rs256_and_es256_keys(client: httpx.AsyncClient) -> None:
    jwks = await jwks_of(client)

    algs = {key["alg"] for key in jwks["keys"]}
    assert {"RS256", "ES256"} <= algs
    for key in jwks["keys"]:
        assert key["kid"]
        assert key["use"] == "sig"
        assert key["kty"] == ("RSA" if key["alg"] == "RS256" else "EC")
        assert not PRIVATE_MEMBERS & set(key), key.keys()
    assert len(kids(jwks)) == len(jwks["keys"])


async def test_rs256_is_the_default(running: Running) -> None:
    await make_user(running.idp)
    rp = await make_client(running.idp)

    token = await new_id_token(running, rp)

    async with running.client() as http:
        jwks = await jwks_of(http)
    header = header_of(token)
    assert header["alg"] == "RS256"
    assert header["kid"] in kids(jwks)
    assert verify(token, jwks)["aud"] == rp.client_id


async def test_es256_client_gets_an_es256_id_token(running: Running) -> None:
    await make_user(running.idp)
    rp = await make_client(running.idp, "EC board", id_token_alg="ES256")

    token = await new_id_token(running, rp)

    async with running.client() as http:
        jwks = await jwks_of(http)
    header = header_of(token)
    assert header["alg"] == "ES256"
    published = {key["kid"]: key for key in jwks["keys"]}
    assert published[header["kid"]]["alg"] == "ES256"
    assert verify(token, jwks)["aud"] == rp.client_id


# -- rotation ------------------------------------------------------------------------------------------------


async def test_rotation_signs_with_the_new_key_and_keeps_the_old_one_published(
    running: Running, clock: FrozenClock
) -> None:
    await make_user(running.idp)
    rp = await make_client(running.idp)
    old_token = await new_id_token(running, rp)
    old_kid = header_of(old_token)["kid"]
    clock.advance(60)  # the newest key signs; a frozen clock would give both keys the same created_at

    new_kids = await running.idp.key_ring.rotate()

    new_token = await new_id_token(running, rp)
    async with running.client() as http:
        jwks = await jwks_of(http)
    assert header_of(new_token)["kid"] in new_kids
    assert header_of(new_token)["kid"] != old_kid
    assert old_kid in kids(jwks)
    assert set(new_kids) <= kids(jwks)
    verify(old_token, jwks)
    verify(new_token, jwks)

    await running.idp.key_ring.retire(old_kid)

    async with running.client() as http:
        after = await jwks_of(http)
    assert old_kid not in kids(after)
    assert set(new_kids) <= kids(after)
    with pytest.raises(JoseError):
        verify(old_token, after)
    verify(new_token, after)


async def test_retiring_the_current_signer_is_refused(running: Running) -> None:
    ring = running.idp.key_ring
    for alg in ("RS256", "ES256"):
        signer = ring.signer(alg).kid
        with pytest.raises(Conflict):
            await ring.retire(signer)
        async with running.client() as http:
            assert signer in kids(await jwks_of(http))


async def test_a_second_instance_picks_up_a_rotation(
    running: Running, start_app: StartApp, settings: Settings, clock: FrozenClock
) -> None:
    await make_user(running.idp)
    rp = await make_client(running.idp)
    # The periodic refresh is an hour away, so only refresh_if_rotated can tell the second instance.
    second = await start_app(settings.model_copy(update={"key_refresh_seconds": 3600}))
    assert second.idp.key_ring.jwks_bytes == running.idp.key_ring.jwks_bytes
    clock.advance(60)

    new_kids = await running.idp.key_ring.rotate()

    # Its in-memory set, not GET /jwks: that request checks the database itself once a second has passed since the
    # last look (tests/replicas/test_key_rotation.py), and generating the RSA key can take that long.
    assert not set(new_kids) & kids(json.loads(second.idp.key_ring.jwks_bytes))
    assert await second.idp.key_ring.refresh_if_rotated() is True
    assert await second.idp.key_ring.refresh_if_rotated() is False
    async with second.client() as http:
        assert set(new_kids) <= kids(await jwks_of(http))
    assert header_of(await new_id_token(second, rp))["kid"] in new_kids

    old = [k["kid"] for k in json.loads(running.idp.key_ring.jwks_bytes)["keys"] if k["kid"] not in new_kids]
    for kid in old:
        await running.idp.key_ring.retire(kid)
    assert await second.idp.key_ring.refresh_if_rotated() is True
    async with second.client() as http:
        assert kids(await jwks_of(http)) == set(new_kids)


async def test_private_keys_are_encrypted_at_rest(running: Running, clock: FrozenClock) -> None:
    clock.advance(60)
    await running.idp.key_ring.rotate()

    async with running.idp.db.transaction() as session:
        rows = (await session.execute(select(SigningKey))).scalars().all()

    assert len(rows) == 4
    for row in rows:
        assert "PRIVATE KEY" not in row.private_key
        assert "BEGIN" not in row.private_key
        public = json.loads(row.public_jwk)
        assert not PRIVATE_MEMBERS & set(public)
