"""The grant services, built together because they share one token minter (RFC 6749, 7636, 7662, 7009).

`codes` (authorization codes, consent, continuation markers), `tokens` (access, refresh and ID tokens) and
`lookup` (introspection, revocation, UserInfo) each live in their own module.
"""

from __future__ import annotations

from datetime import timedelta

from idp.clock import Clock
from idp.config import Settings
from idp.services.audit import AuditLog
from idp.services.codes import CodeService
from idp.services.keys import KeyRing
from idp.services.token_lookup import TokenLookup
from idp.services.tokens import TokenService
from idp.store import grants as store
from idp.store import markers as markers_store
from idp.store.db import Database

# Expired codes and tokens are kept a while after expiry, so a late replay is still recognised as one.
PURGE_AFTER = timedelta(days=1)


class GrantService:
    """The three grant services, wired to one token minter; and their housekeeping."""

    def __init__(self, db: Database, keys: KeyRing, audit: AuditLog, clock: Clock, settings: Settings) -> None:
        self._db = db
        self._clock = clock
        self.tokens = TokenService(db, keys, audit, clock, settings)
        self.codes = CodeService(db, self.tokens, audit, clock, settings)
        self.lookup = TokenLookup(db, audit, clock, settings.issuer)

    async def purge_expired(self) -> None:
        """Housekeeping: drop codes and tokens a day past their expiry, and expired continuation markers."""
        async with self._db.transaction() as session:
            await store.purge_expired(session, self._clock.now() - PURGE_AFTER)
            await markers_store.purge_expired(session, self._clock.now())
