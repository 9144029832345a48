"""The signing key ring: keys parsed once into memory, JWKS pre-encoded, refreshed when another replica rotates.

Each algorithm (RS256, ES256) has its newest live key as signer; older live keys stay in the JWKS so tokens
they signed still verify until an operator retires them.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from idp.auth.crypto import Sealer
from idp.auth.tokens import new_opaque
from idp.clock import Clock
from idp.errors import Conflict, NotFound
from idp.store import keys as store
from idp.store.db import Database
from idp.store.models import SigningKey

ALGORITHMS = ("RS256", "ES256")


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


class KeyRing:
    """In-memory signing keys shared by all requests of this process."""

    def __init__(self, db: Database, sealer: Sealer, clock: Clock) -> None:
        self._db = db
        self._sealer = sealer
        self._clock = clock
        self._keys: list[LoadedKey] = []
        self._signers: dict[str, LoadedKey] = {}
        self._kids: set[str] = set()
        self.key_set = KeySet([])
        self.jwks_bytes = b'{"keys":[]}'

    async def start(self) -> None:
        """Load the keys, creating a first key for each algorithm on an empty database."""
        await self.reload()
        missing = [alg for alg in ALGORITHMS if alg not in self._signers]
        if missing:
            for alg in missing:
                await self._create(alg)
            await self.reload()

    async def reload(self) -> None:
        async with self._db.transaction() as session:
            rows = await store.list_live_keys(session)
        loaded = await asyncio.to_thread(self._parse, rows)
        self._install(loaded)

    def _parse(self, rows: list[SigningKey] | tuple[SigningKey, ...] | object) -> list[LoadedKey]:
        result = []
        for row in rows:  # type: ignore[attr-defined]
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
        async with self._db.transaction() as session:
            kids = await store.list_live_kids(session)
        if kids != self._kids:
            await self.reload()
            return True
        return False

    async def _create(self, alg: str) -> str:
        key = await asyncio.to_thread(_generate, alg)
        kid = new_opaque(12)
        pem = key.as_pem(private=True)
        public = {**key.as_dict(private=False), "kid": kid, "alg": alg, "use": "sig"}
        async with self._db.transaction() as session:
            await store.insert_key(
                session,
                SigningKey(
                    kid=kid,
                    alg=alg,
                    private_key=self._sealer.seal(pem, aad=kid),
                    public_jwk=json.dumps(public),
                    created_at=self._clock.now(),
                ),
            )
        return kid

    async def rotate(self) -> list[str]:
        """A new key per algorithm signs from now on; the old ones stay published until retired."""
        kids = [await self._create(alg) for alg in ALGORITHMS]
        await self.reload()
        return kids

    async def retire(self, kid: str) -> None:
        """Remove `kid` from the JWKS; refused for a key that is still the signer of its algorithm."""
        if kid in {k.kid for k in self._signers.values()}:
            raise Conflict("this key is the current signer; rotate first")
        async with self._db.transaction() as session:
            if not await store.retire_key(session, kid, self._clock.now()):
                raise NotFound("no live key with this kid")
        await self.reload()

    def signer(self, alg: str) -> LoadedKey:
        return self._signers[alg]

    async def sign(self, claims: dict[str, object], alg: str) -> str:
        """A compact JWS of `claims`, signed off the event loop with this algorithm's current key."""
        signer = self._signers[alg]
        header = {"alg": alg, "kid": signer.kid, "typ": "JWT"}
        return await asyncio.to_thread(jwt.encode, header, claims, signer.key, [alg])

    def verify(self, token: str) -> jwt.Token:
        """Decode a JWS signed by one of our live keys (raises joserfc errors otherwise)."""
        return jwt.decode(token, self.key_set, algorithms=list(ALGORITHMS))

    def describe(self) -> list[dict[str, object]]:
        signing = {k.kid for k in self._signers.values()}
        return [
            {"kid": k.kid, "alg": k.alg, "created_at": k.created_at.isoformat(), "signing": k.kid in signing}
            for k in sorted(self._keys, key=lambda k: k.created_at, reverse=True)
        ]
