"""Helpers for OIDC tests: clients, PKCE pairs, walking the code flow through the pages, reading redirects."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.container import Idp
from tests.support.pages import PASSWORD, submit_login

REDIRECT_URI = "https://jobs.example/callback"
LOGOUT_URI = "https://jobs.example/signed-out"


@dataclass
class RegisteredClient:
    client_id: str
    secret: str | None
    redirect_uri: str = REDIRECT_URI

    @property
    def basic(self) -> tuple[str, str]:
        assert self.secret is not None
        return (self.client_id, self.secret)


async def make_client(idp: Idp, name: str = "Jobs", **kw: Any) -> RegisteredClient:
    kw.setdefault("redirect_uris", [REDIRECT_URI])
    kw.setdefault("post_logout_redirect_uris", [LOGOUT_URI])
    client, secret = await idp.clients.create(name, **kw)
    return RegisteredClient(client.client_id, secret)


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def auth_params(client: RegisteredClient, challenge: str | None = None, **extra: str) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uri,
        "scope": "openid email profile",
        "state": "st-" + secrets.token_hex(4),
        "nonce": "n-" + secrets.token_hex(4),
    }
    if challenge:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    params.update(extra)
    return params


async def authorize(browser: httpx.AsyncClient, params: dict[str, str]) -> httpx.Response:
    return await browser.get("/authorize", params=params)


async def sign_in_and_authorize(
    browser: httpx.AsyncClient,
    params: dict[str, str],
    email: str = "person@example.com",
    password: str = PASSWORD,
) -> dict[str, str]:
    """Start at /authorize, sign in when sent to /login, and return the query the RP receives."""
    response = await authorize(browser, params)
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    if location.startswith("/login"):
        next_url = query_of(location)["next"]
        login = await submit_login(browser, email, password, next_url=next_url, form_page=location)
        assert login.status_code == 303, login.text
        response = await browser.get(login.headers["location"])
        assert response.status_code == 303, response.text
        location = response.headers["location"]
    assert location.startswith(params["redirect_uri"]), location
    return query_of(location)


async def exchange(
    rp: httpx.AsyncClient, client: RegisteredClient, code: str, verifier: str | None = None
) -> httpx.Response:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": client.redirect_uri}
    if verifier:
        data["code_verifier"] = verifier
    if client.secret:
        return await rp.post("/token", data=data, auth=client.basic)
    return await rp.post("/token", data={**data, "client_id": client.client_id})


async def decode_id_token(rp: httpx.AsyncClient, id_token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set((await rp.get("/jwks")).json())
    return jwt.decode(id_token, keys, algorithms=["RS256", "ES256"]).claims
