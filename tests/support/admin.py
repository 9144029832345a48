"""Helpers for admin API tests: a client carrying an admin token, the error shape, and whole-table snapshots."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from idp.store.models import AuditEvent
from tests.conftest import Running
from tests.support.oidc import RegisteredClient, auth_params, exchange, sign_in_and_authorize

API = "/admin/api"


async def admin_client(running: Running, name: str = "ops") -> httpx.AsyncClient:
    """A client whose every request carries a fresh admin token named `name`."""
    _, token = await running.idp.admin_tokens.create(name)
    client = running.client()
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def assert_api_error(response: httpx.Response, status: int, error: str | None = None) -> dict[str, Any]:
    """The admin API's error shape: exactly `error` and `error_description`, JSON, never cached."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "error_description"}, body
    assert body["error_description"]
    if error is not None:
        assert body["error"] == error, body
    return body


async def audit_events(running: Running, type_: str | None = None) -> list[AuditEvent]:
    """Audit rows oldest first, optionally of one type."""
    query = select(AuditEvent).order_by(AuditEvent.id)
    if type_ is not None:
        query = query.where(AuditEvent.type == type_)
    async with running.idp.db.transaction() as session:
        return list((await session.execute(query)).scalars().all())


async def tokens_for(
    running: Running, browser: httpx.AsyncClient, rp: RegisteredClient, **extra: str
) -> dict[str, Any]:
    """Sign in through /authorize (the browser signs in if needed) and exchange the code: the token response."""
    answer = await sign_in_and_authorize(browser, auth_params(rp, **extra))
    async with running.client() as backend:
        response = await exchange(backend, rp, answer["code"])
    assert response.status_code == 200, response.text
    return dict(response.json())


async def refresh(running: Running, rp: RegisteredClient, refresh_token: str) -> httpx.Response:
    async with running.client() as backend:
        return await backend.post(
            "/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token}, auth=rp.basic
        )


async def dump_tables(running: Running, *, skip: tuple[str, ...] = ()) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every idp table (all columns), in a stable order, for before/after comparisons."""
    from idp.store.models import Base

    dump: dict[str, list[tuple[Any, ...]]] = {}
    async with running.idp.db.transaction() as session:
        for table in Base.metadata.sorted_tables:
            if table.name in skip:
                continue
            result = await session.execute(select(table).order_by(*table.primary_key.columns))
            dump[table.name] = [tuple(row) for row in result.all()]
    return dump
