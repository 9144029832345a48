"""The authorization code flow end to end over HTTP: code + PKCE, ID token claims, userinfo, refresh, revoke."""

from __future__ import annotations

import httpx

from tests.conftest import Running
from tests.support.oidc import (
    auth_params,
    decode_id_token,
    exchange,
    make_client,
    pkce_pair,
    sign_in_and_authorize,
)
from tests.support.pages import make_user


async def test_confidential_client_code_flow(running: Running, client: httpx.AsyncClient) -> None:
    user = await make_user(running.idp, name="Pat")
    rp_client = await make_client(running.idp)
    verifier, challenge = pkce_pair()
    params = auth_params(rp_client, challenge)

    answer = await sign_in_and_authorize(client, params)

    assert answer["state"] == params["state"]
    assert answer["iss"] == "http://testserver"
    async with running.client() as rp:
        response = await exchange(rp, rp_client, answer["code"], verifier)
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        tokens = response.json()
        assert tokens["token_type"] == "Bearer"
        claims = await decode_id_token(rp, tokens["id_token"])
        assert claims["iss"] == "http://testserver"
        assert claims["sub"] == user.id
        assert claims["aud"] == rp_client.client_id
        assert claims["azp"] == rp_client.client_id
        assert claims["nonce"] == params["nonce"]
        assert claims["amr"] == ["pwd"]
        assert claims["acr"] == "pwd"
        assert {"exp", "iat", "auth_time", "sid", "at_hash"} <= claims.keys()

        info = await rp.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert info.status_code == 200
        assert info.json() == {"sub": user.id, "email": "person@example.com", "email_verified": False, "name": "Pat"}

        refreshed = await rp.post(
            "/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
            auth=rp_client.basic,
        )
        assert refreshed.status_code == 200, refreshed.text
        new = refreshed.json()
        assert new["refresh_token"] != tokens["refresh_token"]
        new_claims = await decode_id_token(rp, new["id_token"])
        assert (new_claims["amr"], new_claims["acr"], new_claims["auth_time"], new_claims["sid"]) == (
            claims["amr"],
            claims["acr"],
            claims["auth_time"],
            claims["sid"],
        )

        # Reusing the old refresh token revokes the whole family, the new one included.
        reuse = await rp.post(
            "/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
            auth=rp_client.basic,
        )
        assert reuse.status_code == 400
        assert reuse.json()["error"] == "invalid_grant"
        dead = await rp.post(
            "/token",
            data={"grant_type": "refresh_token", "refresh_token": new["refresh_token"]},
            auth=rp_client.basic,
        )
        assert dead.json()["error"] == "invalid_grant"
        introspected = await rp.post("/introspect", data={"token": new["access_token"]}, auth=rp_client.basic)
        assert introspected.json() == {"active": False}


async def test_sso_second_client_gets_a_code_without_typing(running: Running, client: httpx.AsyncClient) -> None:
    await make_user(running.idp)
    first = await make_client(running.idp, "First")
    second = await make_client(running.idp, "Second")
    await sign_in_and_authorize(client, auth_params(first))

    response = await client.get("/authorize", params=auth_params(second))

    assert response.status_code == 303
    assert response.headers["location"].startswith("https://jobs.example/callback?code=")
