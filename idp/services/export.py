"""Export my data (issue #13, GDPR art. 15 and 20): what idp keeps about a person, as one JSON document.

Never a secret: no password or its hash, no authenticator secret, no backup code, no token or cookie, no session id.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from idp.clock import Clock
from idp.services.audit import AuditLog
from idp.services.mfa import MfaService
from idp.services.sessions import ActiveSession, SessionService
from idp.store import personal_data as store
from idp.store.db import Database

# Audit events are exported newest first, in pages of this many, up to the cap (retention bounds them anyway).
AUDIT_PAGE = 500
MAX_AUDIT_EVENTS = 20_000


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class DataExport:
    """Gathers the person's data from the services that own each part."""

    def __init__(
        self, db: Database, clock: Clock, *, sessions: SessionService, mfa: MfaService, audit: AuditLog
    ) -> None:
        self._db = db
        self._clock = clock
        self._sessions = sessions
        self._mfa = mfa
        self._audit = audit

    async def export(self, active: ActiveSession, *, site_name: str, client_ip: str) -> dict[str, Any]:
        """The document; the export itself is audited (and so appears in the next one)."""
        user = active.user
        now = self._clock.now()
        mfa = await self._mfa.status(user.id)
        sessions = await self._sessions.list_of_user(user.id, current_sid=active.sid)
        async with self._db.transaction() as session:
            linked = await store.linked_clients(session, user.id, now)
        events: list[dict[str, Any]] = []
        before: int | None = None
        while len(events) < MAX_AUDIT_EVENTS:
            page = await self._audit.list(user_id=user.id, before_id=before, limit=AUDIT_PAGE)
            events += [
                {
                    "at": _time(e.at),
                    "type": e.type,
                    "outcome": e.outcome,
                    "client_ip": e.client_ip,
                    # Who acted is left out: an operator's or another person's name is not this person's data.
                    "by_operator": e.type.startswith("admin."),
                    "details": json.loads(e.details or "{}"),
                }
                for e in page
            ]
            if len(page) < AUDIT_PAGE:
                break
            before = page[-1].id
        async with self._db.transaction() as session:
            await self._audit.record(session, "account.exported", user_id=user.id, client_ip=client_ip)
        return {
            "service": site_name,
            "exported_at": _time(now),
            "profile": {
                "sub": user.id,
                "email": user.email,
                "email_verified": user.email_verified,
                "name": user.name,
                "locale": user.locale,
                "created_at": _time(user.created_at),
                "updated_at": _time(user.updated_at),
            },
            "security": {
                "password_set": user.password_hash is not None,
                "two_step_verification": {
                    "enabled": mfa.enabled,
                    "since": _time(mfa.since),
                    "backup_codes_left": mfa.backup_codes_left,
                },
            },
            "sessions": [
                {
                    "created_at": _time(s.created_at),
                    "last_seen_at": _time(s.last_seen_at),
                    "client_ip": s.client_ip,
                    "user_agent": s.user_agent,
                    "browser": s.browser,
                    "system": s.system,
                    "methods": list(s.methods),
                    "job_boards": [{"client_id": c, "name": n} for c, n in s.clients],
                    "this_browser": s.current,
                }
                for s in sessions
            ],
            "job_boards": [
                {
                    "client_id": c.client_id,
                    "name": c.name,
                    "consented_scope": c.consented_scope.split(),
                    "consented_at": _time(c.consented_at),
                    "their_ids_for_you": sorted(c.external_ids),
                    "signed_in_until": _time(c.grant_expires_at),
                }
                for c in linked
            ],
            "audit_events": events,
        }
