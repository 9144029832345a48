"""Helpers for driving the HTML pages over HTTP: CSRF tokens, sign-in, reading messages."""

from __future__ import annotations

import re

import httpx

from idp.container import Idp
from idp.store.models import User

PASSWORD = "a long and correct password"
_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def csrf_from(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no csrf_token in the page"
    return match.group(1)


async def csrf_token(client: httpx.AsyncClient, path: str = "/login") -> str:
    response = await client.get(path)
    return csrf_from(response.text)


async def submit_login(
    client: httpx.AsyncClient, email: str, password: str, *, next_url: str | None = None, form_page: str = "/login"
) -> httpx.Response:
    data = {"username": email, "password": password, "csrf_token": await csrf_token(client, form_page)}
    if next_url is not None:
        data["next"] = next_url
    return await client.post("/login", data=data)


async def make_user(idp: Idp, email: str = "person@example.com", password: str = PASSWORD, **kw: str) -> User:
    return await idp.users.create(email, password=password, **kw)
