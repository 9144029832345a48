"""Helpers for onboarding tests: JSON Lines bodies, the admin import call, and the rows an import leaves."""

from __future__ import annotations

import json
from typing import Any

import httpx
from sqlalchemy import func, select

from idp.store.models import AuditEvent, BackupCode, ExternalId, LegacyPasswordHash, TotpCredential, User
from tests.conftest import Running

JSONL = {"Content-Type": "application/jsonl"}


def jsonl(*records: dict[str, Any] | str) -> bytes:
    """JSON Lines from records (dicts are encoded; strings go in as they are, for malformed lines)."""
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records).encode()


async def import_lines(admin: httpx.AsyncClient, body: bytes, *, dry_run: bool = False) -> dict[str, Any]:
    response = await admin.post(
        "/admin/api/users/import" + ("?dry_run=true" if dry_run else ""), content=body, headers=JSONL
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    assert [r["line"] for r in result["results"]] == sorted(r["line"] for r in result["results"])
    return result


def statuses(result: dict[str, Any]) -> list[str]:
    return [r["status"] for r in result["results"]]


async def counts(running: Running) -> dict[str, int]:
    """How many rows each table an import writes holds."""
    found = {}
    async with running.idp.db.transaction() as session:
        for model in (User, ExternalId, LegacyPasswordHash, TotpCredential, BackupCode):
            found[model.__tablename__] = int(
                (await session.execute(select(func.count()).select_from(model))).scalar_one()
            )
    return found


async def user_row(running: Running, email_norm: str) -> User:
    async with running.idp.db.transaction() as session:
        return (await session.execute(select(User).where(User.email_norm == email_norm))).scalar_one()


async def legacy_of(running: Running, user_id: str) -> list[str]:
    async with running.idp.db.transaction() as session:
        query = select(LegacyPasswordHash.password_hash).where(LegacyPasswordHash.user_id == user_id)
        return list((await session.execute(query)).scalars().all())


async def events(running: Running, prefix: str) -> list[AuditEvent]:
    async with running.idp.db.transaction() as session:
        query = select(AuditEvent).where(AuditEvent.type.startswith(prefix)).order_by(AuditEvent.id)
        return list((await session.execute(query)).scalars().all())
