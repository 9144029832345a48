"""The signing key ring: keys parsed once into memory, JWKS pre-encoded, refreshed when another replica rotates.

Each algorithm (RS256, ES256) has its newest live key as signer; older live keys stay in the JWKS so tokens
they signed still verify until an operator retires them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from idp.auth.crypto import Sealer
from idp.auth.tokens import jws_header, new_identifier
from idp.clock import Clock
from idp.errors import Conflict, NotFound
from idp.store import keys as store
from idp.store.db import Database
from idp.store.models import SigningKey

ALGORITHMS = ("RS256", "ES256")
# A JWKS request or an unknown kid looks in the database at most this often (per process), whatever the traffic.
ON_DEMAND_REFRESH_SECONDS = 1.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedKey:
    kid: str
    alg: str
    key: RSAKey | ECKey
    created_at: datetime


def _generate(alg: str) -> RSAKey | ECKey:
    if alg == "RS256":
        return RSAKey.generate_key(2048, private=True)
    return ECKey.generate_key("P-256", private=True)


def _import(alg: str, pem: bytes, kid: str) -> RSAKey | ECKey:
    cls = RSAKey if alg == "RS256" else ECKey
    return cls.import_key(pem, {"kid": kid, "alg": alg, "use": "sig"})


def _kid_of(token: str) -> str | None:
    """The `kid` in a compact JWS's protected header, or None if there is none or the token is malformed."""
    try:
        kid = jws_header(token).get("kid")
    except ValueError:
        return None
    return kid if isinstance(kid, str) else None


class KeyRing:
    """In-memory signing keys shared by all requests of this process."""

    def __init__(self, db: Database, sealer: Sealer, clock: Clock) -> None:
        self._db = db
        self._sealer = sealer
        self._clock = clock
        self._keys: list[LoadedKey] = []
        self._signers: dict[str, LoadedKey] = {}
        self._kids: set[str] = set()
        self._checked_at = 0.0  # time.monotonic() of the last look at the database's keys
        self.key_set = KeySet([])
        self.jwks_bytes = b'{"keys":[]}'

    async def start(self) -> None:
        """Load the keys, creating a first key for each algorithm on an empty database.

        Replicas starting together on an empty database take turns (a lock held until commit), so only the first
        creates keys and every replica starts out signing with the same ones.
        """
        await self.reload()
        if all(alg in self._signers for alg in ALGORITHMS):
            return
        async with self._db.transaction() as session:
            await store.lock_key_creation(session)
            present = {row.alg for row in await store.list_live_keys(session)}
            for alg in ALGORITHMS:
                if alg not in present:
                    await store.insert_key(session, await self._new_key(alg))
        await self.reload()

    async def reload(self) -> None:
        self._checked_at = time.monotonic()
        rows = await self._db.read(store.list_live_keys)
        loaded = await asyncio.to_thread(self._parse, rows)
        self._install(loaded)

    def _parse(self, rows: Sequence[SigningKey]) -> list[LoadedKey]:
        result = []
        for row in rows:
            pem = self._sealer.open(row.private_key, aad=row.kid)
            result.append(LoadedKey(row.kid, row.alg, _import(row.alg, pem, row.kid), row.created_at))
        return result

    def _install(self, loaded: list[LoadedKey]) -> None:
        signers: dict[str, LoadedKey] = {}
        for item in sorted(loaded, key=lambda k: (k.created_at, k.kid), reverse=True):
            signers.setdefault(item.alg, item)
        self._keys = loaded
        self._signers = signers
        self._kids = {k.kid for k in loaded}
        self.key_set = KeySet([k.key for k in loaded])
        public = [{**k.key.as_dict(private=False), "kid": k.kid, "alg": k.alg, "use": "sig"} for k in loaded]
        self.jwks_bytes = json.dumps({"keys": public}, separators=(",", ":")).encode()

    async def refresh_if_rotated(self) -> bool:
        """Reload when the database's live keys differ from ours (one small indexed query)."""
        self._checked_at = time.monotonic()
        kids = await self._db.read(store.list_live_kids)
        if kids != self._kids:
            await self.reload()
            return True
        return False

    async def refresh_soon(self) -> None:
        """Check for keys rotated on another replica now, unless checked within the last second.

        For the JWKS and for a token whose kid we do not know: a relying party that was just handed a token
        signed on the replica that rotated must find the key on whichever replica it asks. A database error
        leaves the keys as they are (the periodic refresh retries).
        """
        if time.monotonic() - self._checked_at < ON_DEMAND_REFRESH_SECONDS:
            return
        try:
            await self.refresh_if_rotated()
        except Exception:
            log.warning("signing key refresh failed; serving the keys loaded before", exc_info=True)

    async def _new_key(self, alg: str) -> SigningKey:
        key = await asyncio.to_thread(_generate, alg)
        kid = new_identifier(12)
        pem = key.as_pem(private=True)
        public = {**key.as_dict(private=False), "kid": kid, "alg": alg, "use": "sig"}
        return SigningKey(
            kid=kid,
            alg=alg,
            private_key=self._sealer.seal(pem, aad=kid),
            public_jwk=json.dumps(public),
            created_at=self._clock.now(),
        )

    async def _create(self, alg: str) -> str:
        row = await self._new_key(alg)
        async with self._db.transaction() as session:
            await store.insert_key(session, row)
        return row.kid

    async def rotate(self) -> list[str]:
        """A new key per algorithm signs from now on; the old ones stay published until retired."""
        kids = [await self._create(alg) for alg in ALGORITHMS]
        await self.reload()
        return kids

    async def retire(self, kid: str) -> None:
        """Remove `kid` from the JWKS; refused for a key that is still the signer of its algorithm."""
        await self.refresh_if_rotated()  # judge "still the signer" by the database, not a stale replica's view
        if kid in {k.kid for k in self._signers.values()}:
            raise Conflict("this key is the current signer; rotate first")
        async with self._db.transaction() as session:
            if not await store.retire_key(session, kid, self._clock.now()):
                raise NotFound("no live key with this kid")
        await self.reload()

    def signer(self, alg: str) -> LoadedKey:
        return self._signers[alg]

    async def sign(self, claims: dict[str, object], alg: str, *, typ: str = "JWT") -> str:
        """A compact JWS of `claims`, signed off the event loop with this algorithm's current key."""
        signer = self._signers[alg]
        header = {"alg": alg, "kid": signer.kid, "typ": typ}
        return await asyncio.to_thread(jwt.encode, header, claims, signer.key, [alg])

    def verify(self, token: str) -> jwt.Token:
        """Decode a JWS signed by one of our live keys (raises joserfc errors, or ValueError for a malformed one)."""
        jws_header(token)  # size and nesting bounded before joserfc parses anything
        return jwt.decode(token, self.key_set, algorithms=list(ALGORITHMS))

    async def verify_current(self, token: str) -> jwt.Token:
        """Like `verify`, but a kid not loaded here is first looked for in the database (rotated elsewhere)."""
        kid = _kid_of(token)
        if kid is not None and kid not in self._kids:
            await self.refresh_soon()
        return self.verify(token)

    def describe(self) -> list[dict[str, object]]:
        signing = {k.kid for k in self._signers.values()}
        return [
            {"kid": k.kid, "alg": k.alg, "created_at": k.created_at.isoformat(), "signing": k.kid in signing}
            for k in sorted(self._keys, key=lambda k: k.created_at, reverse=True)
        ]
