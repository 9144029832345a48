"""CORS: browser relying parties may call discovery, JWKS, token, userinfo and revocation; nothing else."""

from __future__ import annotations

import httpx
import pytest


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/jwks", "/token", "/userinfo", "/revoke"])
async def test_preflight_for_rp_endpoints(client: httpx.AsyncClient, path: str) -> None:
    response = await client.options(
        path,
        headers={
            "Origin": "https://spa.jobs.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert "Authorization" in response.headers["access-control-allow-headers"]
    assert "access-control-allow-credentials" not in response.headers


async def test_responses_carry_the_origin_header(client: httpx.AsyncClient) -> None:
    discovery = await client.get("/.well-known/openid-configuration", headers={"Origin": "https://spa.jobs.example"})
    assert discovery.headers["access-control-allow-origin"] == "*"
    token = await client.post("/token", data={"grant_type": "nope"}, headers={"Origin": "https://spa.jobs.example"})
    assert token.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize("path", ["/login", "/authorize", "/account", "/admin/api/users", "/introspect"])
async def test_no_cors_elsewhere(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path, headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in response.headers
