"""Assertions on what OIDC endpoints put on the wire: error redirects, RFC 6749 §5.2 JSON, error pages; row counts."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx
from sqlalchemy import func, select

from idp.oidc.errors import DESCRIPTION_CHARACTERS
from idp.store.models import AuthorizationCode, Token
from tests.conftest import Running
from tests.support.oidc import query_of

ISSUER = "http://testserver"
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def assert_error_redirect(response: httpx.Response, params: dict[str, str], error: str) -> dict[str, str]:
    """A redirect to the RP's redirect_uri carrying `error`, a description, the request's state and our iss."""
    assert response.status_code in (302, 303), (response.status_code, response.text[:300])
    location = response.headers["location"]
    assert location.startswith(params["redirect_uri"] + "?"), location
    query = query_of(location)
    assert query["error"] == error, query
    assert DESCRIPTION_CHARACTERS.fullmatch(query["error_description"]), query
    assert query["state"] == params["state"], query
    assert query["iss"] == ISSUER, query
    assert "code" not in query
    assert response.headers["cache-control"] == "no-store"
    return query


def assert_error_page(response: httpx.Response, status: int = 400) -> None:
    """idp's own HTML error page: never a redirect anywhere."""
    assert response.status_code == status, (response.status_code, response.headers.get("location"))
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")


def assert_json_error(response: httpx.Response, error: str, status: int = 400) -> dict[str, Any]:
    """RFC 6749 §5.2: JSON with `error`, never cached."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    assert body["error"] == error, body
    if "error_description" in body:
        # RFC 6749 §5.2: only these characters; and so never a quote or backslash in a WWW-Authenticate header.
        assert DESCRIPTION_CHARACTERS.fullmatch(body["error_description"]), body
    return body


def hidden_fields(page: str) -> dict[str, str]:
    """The hidden inputs of an HTML form, unescaped."""
    return {name: html.unescape(value) for name, value in _HIDDEN.findall(page)}


async def count_rows(running: Running, model: type) -> int:
    async with running.idp.db.transaction() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def code_rows(running: Running) -> int:
    return await count_rows(running, AuthorizationCode)


async def token_rows(running: Running) -> int:
    return await count_rows(running, Token)
