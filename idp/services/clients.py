"""Relying-party registration and client authentication (RFC 6749 §2.3, OIDC Registration metadata)."""

from __future__ import annotations

import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from idp.auth.tokens import new_opaque, sha256_hex
from idp.clock import Clock
from idp.errors import InvalidInput, NotFound
from idp.store import clients as store
from idp.store.db import Database
from idp.store.models import Client

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
DEFAULT_GRANTS = ("authorization_code", "refresh_token")
ID_TOKEN_ALGS = ("RS256", "ES256")
LOOPBACK = {"localhost", "127.0.0.1", "::1"}
MAX_URIS = 20


@dataclass(frozen=True)
class ClientInfo:
    """A client as the protocol code sees it."""

    client_id: str
    name: str
    public: bool
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    require_mfa: bool
    require_consent: bool
    id_token_alg: str
    secret_hash: str | None

    @classmethod
    def from_row(cls, row: Client) -> ClientInfo:
        return cls(
            client_id=row.client_id,
            name=row.name,
            public=row.public,
            redirect_uris=tuple(json.loads(row.redirect_uris)),
            post_logout_redirect_uris=tuple(json.loads(row.post_logout_redirect_uris)),
            grant_types=tuple(row.grant_types.split()),
            require_mfa=row.require_mfa,
            require_consent=row.require_consent,
            id_token_alg=row.id_token_alg,
            secret_hash=row.secret_hash,
        )

    def check_secret(self, secret: str) -> bool:
        """Constant-time comparison of the SHA-256 of `secret` with the stored one."""
        if self.public or not self.secret_hash:
            return False
        return hmac.compare_digest(sha256_hex(secret), self.secret_hash)

    def public_view(self) -> dict[str, object]:
        return {
            "client_id": self.client_id,
            "name": self.name,
            "public": self.public,
            "redirect_uris": list(self.redirect_uris),
            "post_logout_redirect_uris": list(self.post_logout_redirect_uris),
            "grant_types": list(self.grant_types),
            "require_mfa": self.require_mfa,
            "require_consent": self.require_consent,
            "id_token_signed_response_alg": self.id_token_alg,
        }


def check_redirect_uri(uri: str, *, public: bool) -> str:
    """https anywhere, http only on loopback (RFC 8252 §7.3), private-use schemes for public apps (§7.1)."""
    if len(uri) > 2000 or any(ord(c) <= 32 for c in uri):
        raise InvalidInput(f"redirect URI is malformed: {uri[:80]!r}")
    parts = urlsplit(uri)
    if parts.fragment or "#" in uri:
        raise InvalidInput("a redirect URI must not contain a fragment")
    if parts.scheme == "https" and parts.hostname:
        return uri
    if parts.scheme == "http" and parts.hostname in LOOPBACK:
        return uri
    if public and parts.scheme and "." in parts.scheme and parts.scheme not in ("http", "https"):
        return uri
    raise InvalidInput(f"redirect URI must be https (http only on loopback): {uri[:80]!r}")


class ClientService:
    """Register, look up and authenticate clients."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def create(
        self,
        name: str,
        *,
        redirect_uris: Sequence[str] = (),
        post_logout_redirect_uris: Sequence[str] = (),
        public: bool = False,
        require_mfa: bool = False,
        require_consent: bool = False,
        grant_types: Sequence[str] | None = None,
        id_token_alg: str = "RS256",  # noqa: S107 - an algorithm name, not a password
    ) -> tuple[ClientInfo, str | None]:
        """Register a client; returns it and, for a confidential client, its secret (shown this once)."""
        name = name.strip()
        if not name or len(name) > 200:
            raise InvalidInput("name must be 1 to 200 characters")
        grants = tuple(dict.fromkeys(grant_types or DEFAULT_GRANTS))
        unknown = [g for g in grants if g not in GRANT_TYPES]
        if unknown:
            raise InvalidInput(f"unknown grant type: {unknown[0]}")
        if public and "client_credentials" in grants:
            raise InvalidInput("a public client cannot use client_credentials")
        if id_token_alg not in ID_TOKEN_ALGS:
            raise InvalidInput("id_token_alg must be RS256 or ES256")
        if len(redirect_uris) > MAX_URIS or len(post_logout_redirect_uris) > MAX_URIS:
            raise InvalidInput(f"at most {MAX_URIS} redirect URIs")
        uris = [check_redirect_uri(u, public=public) for u in redirect_uris]
        logout_uris = [check_redirect_uri(u, public=public) for u in post_logout_redirect_uris]
        if "authorization_code" in grants and not uris:
            raise InvalidInput("the authorization_code grant needs at least one redirect URI")
        secret = None if public else new_opaque(32)
        now = self._clock.now()
        row = Client(
            client_id=new_opaque(18),
            name=name,
            secret_hash=sha256_hex(secret) if secret else None,
            public=public,
            redirect_uris=json.dumps(list(dict.fromkeys(uris))),
            post_logout_redirect_uris=json.dumps(list(dict.fromkeys(logout_uris))),
            grant_types=" ".join(grants),
            require_mfa=require_mfa,
            require_consent=require_consent,
            id_token_alg=id_token_alg,
            created_at=now,
            updated_at=now,
        )
        async with self._db.transaction() as session:
            await store.insert_client(session, row)
        return ClientInfo.from_row(row), secret

    async def find(self, client_id: str) -> ClientInfo | None:
        if not client_id or len(client_id) > 64:
            return None
        async with self._db.transaction() as session:
            row = await store.find_client(session, client_id)
        return ClientInfo.from_row(row) if row else None

    async def load(self, client_id: str) -> ClientInfo:
        client = await self.find(client_id)
        if client is None:
            raise NotFound("no such client")
        return client
