"""Admin API bearer tokens: created once (shown once), stored as SHA-256, revocable, last use kept."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from idp.auth.tokens import new_opaque, sha256_hex
from idp.clock import Clock
from idp.errors import InvalidInput, NotFound
from idp.services.audit import AuditLog
from idp.store import admin_tokens as store
from idp.store.db import Database
from idp.store.models import AdminToken

PREFIX = "idpadm_"  # recognisable in a secret scanner, and never a valid OAuth token
# Writing last_used_at on every call would make each admin read a write.
TOUCH_INTERVAL = timedelta(seconds=60)


@dataclass(frozen=True)
class AdminIdentity:
    id: str
    name: str

    @property
    def actor(self) -> str:
        return f"admin:{self.name}"


def describe(token: AdminToken) -> dict[str, object]:
    return {
        "id": token.id,
        "name": token.name,
        "created_at": token.created_at.isoformat(),
        "last_used_at": token.last_used_at.isoformat() if token.last_used_at else None,
        "revoked_at": token.revoked_at.isoformat() if token.revoked_at else None,
    }


class AdminTokenService:
    def __init__(self, db: Database, clock: Clock, audit: AuditLog) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit

    async def create(self, name: str, *, actor: str = "cli", client_ip: str = "") -> tuple[AdminToken, str]:
        """A new token named `name`; returns the row and the token (the only time it is seen)."""
        name = name.strip()
        if not name or len(name) > 100:
            raise InvalidInput("name must be 1 to 100 characters")
        token = PREFIX + new_opaque(32)
        row = AdminToken(id=str(uuid.uuid4()), name=name, token_hash=sha256_hex(token), created_at=self._clock.now())
        async with self._db.transaction() as session:
            await store.insert_token(session, row)
            await self._audit.record(
                session, "admin.token_created", actor=actor, client_ip=client_ip, credential=row.id, label=name
            )
        return row, token

    async def authenticate(self, token: str) -> AdminIdentity | None:
        """The identity behind a presented bearer token, or None when unknown, malformed or revoked."""
        if not token.startswith(PREFIX) or len(token) > 100:
            return None
        now = self._clock.now()
        async with self._db.transaction() as session:
            row = await store.find_by_hash(session, sha256_hex(token))
            if row is None or row.revoked_at is not None:
                return None
            if row.last_used_at is None or now - row.last_used_at >= TOUCH_INTERVAL:
                await store.mark_used(session, row.id, now)
        return AdminIdentity(row.id, row.name)

    async def refusal(self, token: str) -> tuple[str, str]:
        """Why `authenticate` refused `token`, for the audit log: (reason, the token's id when it is one of ours).

        Never the token itself: a revoked token is named by its row id, anything else by a reason alone."""
        if not token:
            return "missing", ""
        if not token.startswith(PREFIX) or len(token) > 100:
            return "malformed", ""
        async with self._db.transaction() as session:
            row = await store.find_by_hash(session, sha256_hex(token))
        if row is None:
            return "unknown", ""
        return ("revoked" if row.revoked_at is not None else "refused"), row.id

    async def list(self) -> list[AdminToken]:
        async with self._db.transaction() as session:
            return list(await store.list_tokens(session))

    async def revoke(self, token_id: str, *, actor: str = "cli", client_ip: str = "") -> None:
        async with self._db.transaction() as session:
            if len(token_id) > 36 or not await store.revoke_token(session, token_id, self._clock.now()):
                raise NotFound("no live admin token with this id")
            await self._audit.record(
                session, "admin.token_revoked", actor=actor, client_ip=client_ip, credential=token_id
            )
