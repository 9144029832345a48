"""Relying-party registration and client authentication (RFC 6749 §2.3, OIDC Registration metadata)."""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from idp.auth.tokens import new_identifier, new_opaque, sha256_hex
from idp.clock import Clock
from idp.errors import InvalidInput, NotFound
from idp.services.audit import AuditLog
from idp.store import clients as store
from idp.store import grants as grants_store
from idp.store.db import Database
from idp.store.models import Client

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
DEFAULT_GRANTS = ("authorization_code", "refresh_token")
ID_TOKEN_ALGS = ("RS256", "ES256")
LOOPBACK = {"localhost", "127.0.0.1", "::1"}
MAX_URIS = 20
MAX_SCOPE_LENGTH = 500
# The scopes of OpenID Connect (Core §5.4, §11): each speaks about a person, so a client_credentials token has none.
OIDC_SCOPES = ("openid", "profile", "email", "offline_access")
# RFC 8252 §7.3: a native app's loopback listener gets whatever port the OS gives it. IP literals only: §8.3
# recommends against `localhost`, which a hosts file or resolver could point elsewhere.
_LOOPBACK_NETLOC = re.compile(r"(127\.0\.0\.1|\[::1\])(?::([0-9]{1,5}))?")


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
    scopes: tuple[str, ...] = ()
    backchannel_logout_uri: str = ""
    allow_signup: bool = False
    # RFC 7591 §2 display metadata: "" when not registered.
    client_name: str = ""
    logo_uri: str = ""
    client_uri: str = ""

    @property
    def display_name(self) -> str:
        """The name people see: the registered client_name, else the registration name."""
        return self.client_name or self.name

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
            scopes=tuple(row.scope.split()),
            backchannel_logout_uri=row.backchannel_logout_uri,
            allow_signup=row.allow_signup,
            client_name=row.client_name or "",
            logo_uri=row.logo_uri or "",
            client_uri=row.client_uri or "",
        )

    def allows_redirect_uri(self, uri: str) -> bool:
        """Exact match with a registered redirect URI, except that loopback IP URIs match on any port."""
        if uri in self.redirect_uris:
            return True
        portless = _without_loopback_port(uri)
        return portless is not None and any(_without_loopback_port(r) == portless for r in self.redirect_uris)

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
            "scope": " ".join(self.scopes),
            "backchannel_logout_uri": self.backchannel_logout_uri or None,
            "allow_signup": self.allow_signup,
            "client_name": self.client_name or None,
            "logo_uri": self.logo_uri or None,
            "client_uri": self.client_uri or None,
        }

    def allows_return_to(self, uri: str) -> bool:
        """A place on the job board's own site to send a person back to: a registered redirect URI, or any https
        URL (http on loopback) on the origin of one. Checked so `return_to` is never an open redirect."""
        if self.allows_redirect_uri(uri):
            return True
        origin = _web_origin(uri)
        return origin is not None and any(_web_origin(r) == origin for r in self.redirect_uris)


def _without_loopback_port(uri: str) -> str | None:
    """`http://127.0.0.1:PORT/rest` or `http://[::1]:PORT/rest` with the port dropped; None for any other URI."""
    if not uri.startswith("http://"):
        return None
    netloc, slash, rest = uri[len("http://") :].partition("/")
    match = _LOOPBACK_NETLOC.fullmatch(netloc)
    if match is None or (match.group(2) is not None and int(match.group(2)) > 65535):
        return None
    return f"http://{match.group(1)}{slash}{rest}"


def _web_origin(uri: str) -> tuple[str, str, int | None] | None:
    """(scheme, host, port) of an https URL, or an http one on loopback; None for anything else or a malformed one."""
    if len(uri) > 2000 or not uri.isascii() or any(ord(c) <= 32 or ord(c) == 127 for c in uri) or "\\" in uri:
        return None
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    if parts.username is not None or parts.password is not None or not parts.hostname:
        return None
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK):
        return parts.scheme, parts.hostname, port
    return None


MAX_CLIENT_NAME = 200
# What may stand in a CSP source expression: a host name or an IPv4 literal (never ';', ',' or a space).
_HOST = re.compile(r"[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?")


def image_origin(uri: str) -> str | None:
    """`https://host[:port]` of an https URL whose host is a plain name; None for anything else."""
    if not uri:
        return None
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname or ""
    if parts.scheme != "https" or not _HOST.fullmatch(host):
        return None
    return f"https://{host}" + (f":{port}" if port is not None else "")


def check_client_name(name: str) -> str:
    """A display name: printable text of at most 200 characters ('' clears it)."""
    name = name.strip()
    if len(name) > MAX_CLIENT_NAME or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InvalidInput(f"client_name must be printable text of at most {MAX_CLIENT_NAME} characters")
    return name


def check_logo_uri(uri: str) -> str:
    """RFC 7591 logo_uri: an absolute https URL (the browser fetches it from the job board's server, never idp);
    no credentials, no fragment; '' clears it."""
    if not uri:
        return ""
    if _web_origin(uri) is None or image_origin(uri) is None or "#" in uri:
        raise InvalidInput(f"logo_uri must be an https URL without credentials or fragment: {uri[:80]!r}")
    return uri


def check_client_uri(uri: str) -> str:
    """RFC 7591 client_uri, the job board's home page: https (http on loopback), no credentials; '' clears it."""
    if not uri:
        return ""
    if _web_origin(uri) is None or "#" in uri:
        raise InvalidInput(f"client_uri must be an https URL without credentials or fragment: {uri[:80]!r}")
    return uri


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


def check_backchannel_logout_uri(uri: str, *, allow_http: bool) -> str:
    """Back-Channel Logout 1.0 §2.2: an absolute http(s) URI without a fragment (a query is allowed); https unless
    it is a loopback address or idp itself runs on http (a trial); '' clears it."""
    if not uri:
        return ""
    # RFC 3986: printable ASCII only (an IRI must be sent percent-encoded).
    if len(uri) > 2000 or not uri.isascii() or any(ord(c) <= 32 or ord(c) == 127 for c in uri):
        raise InvalidInput(f"back-channel logout URI is malformed: {uri[:80]!r}")
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise InvalidInput(f"back-channel logout URI is malformed: {uri[:80]!r}") from None
    if parts.fragment or "#" in uri:
        raise InvalidInput("a back-channel logout URI must not contain a fragment")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"back-channel logout URI must be an absolute http(s) URI: {uri[:80]!r}")
    if parts.scheme == "http" and not allow_http and parts.hostname not in LOOPBACK:
        raise InvalidInput(f"back-channel logout URI must be https (http only on loopback): {uri[:80]!r}")
    return uri


def check_scopes(scopes: Sequence[str]) -> tuple[str, ...]:
    """Registered client_credentials scopes: RFC 6749 §3.3 scope tokens, none of them a person's (openid ...).

    Each item may itself hold several space-separated scopes (RFC 7591 `scope` is one such string)."""
    tokens = tuple(dict.fromkeys(t for item in scopes for t in item.split(" ") if t))
    for token in tokens:
        if len(token) > 100 or not all(c == "!" or "#" <= c <= "[" or "]" <= c <= "~" for c in token):
            raise InvalidInput(f"a scope must be printable ASCII without quotes or backslashes: {token[:40]!r}")
        if token in OIDC_SCOPES:
            raise InvalidInput(f"{token} is a scope about a person; client_credentials tokens have none")
    if len(" ".join(tokens)) > MAX_SCOPE_LENGTH:
        raise InvalidInput(f"the scopes take at most {MAX_SCOPE_LENGTH} characters together")
    return tokens


def _check_registration(
    name: str,
    grant_types: Sequence[str],
    redirect_uris: Sequence[str],
    post_logout_redirect_uris: Sequence[str],
    public: bool,
    id_token_alg: str,
) -> tuple[str, tuple[str, ...], list[str], list[str]]:
    """Validate registration metadata; returns the cleaned name, grants and URI lists."""
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("name must be 1 to 200 characters")
    grants = tuple(dict.fromkeys(grant_types))
    unknown = [g for g in grants if g not in GRANT_TYPES]
    if unknown:
        raise InvalidInput(f"unknown grant type: {unknown[0][:40]}")
    if public and "client_credentials" in grants:
        raise InvalidInput("a public client cannot use client_credentials")
    if id_token_alg not in ID_TOKEN_ALGS:
        raise InvalidInput("id_token_alg must be RS256 or ES256")
    if len(redirect_uris) > MAX_URIS or len(post_logout_redirect_uris) > MAX_URIS:
        raise InvalidInput(f"at most {MAX_URIS} redirect URIs")
    uris = list(dict.fromkeys(check_redirect_uri(u, public=public) for u in redirect_uris))
    logout_uris = list(dict.fromkeys(check_redirect_uri(u, public=public) for u in post_logout_redirect_uris))
    if "authorization_code" in grants and not uris:
        raise InvalidInput("the authorization_code grant needs at least one redirect URI")
    return name, grants, uris, logout_uris


# How stale a replica's cached client may be after another replica (or an operator command) changed it.
CACHE_CHECK_SECONDS = 1.0


class ClientCache:
    """Clients by id, held in process; emptied when the database's change counter moves.

    The counter is read at most once per `check_seconds`, so a change made elsewhere is seen within that time; a
    change made through this process empties the cache at once. A lookup that was under way while the cache was
    emptied does not store what it read (it may predate the change)."""

    def __init__(self, check_seconds: float = CACHE_CHECK_SECONDS, max_entries: int = 10_000) -> None:
        self.check_seconds = check_seconds
        self.max_entries = max_entries
        self.entries: dict[str, ClientInfo] = {}
        self.version: int | None = None
        self.checked_at = -float("inf")
        self.generation = 0  # moves each time the cache is emptied

    def due(self) -> bool:
        return time.monotonic() - self.checked_at >= self.check_seconds

    def observe(self, version: int) -> None:
        """The database's counter as just read: empty the cache if it moved."""
        self.checked_at = time.monotonic()
        if version != self.version:
            self.version = version
            self.clear()

    def clear(self) -> None:
        self.entries.clear()
        self.generation += 1

    def store(self, client: ClientInfo, generation: int) -> None:
        if generation == self.generation and len(self.entries) < self.max_entries:
            self.entries[client.client_id] = client


class ClientService:
    """Register, look up and authenticate clients."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        audit: AuditLog | None = None,
        *,
        http_issuer: bool = False,
        cache_check_seconds: float = CACHE_CHECK_SECONDS,
    ) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit or AuditLog(clock)
        # An idp on plain http is a trial: its job boards may take back-channel logouts on http too.
        self._http_issuer = http_issuer
        self.cache = ClientCache(cache_check_seconds)
        self._version_read: asyncio.Future[int] | None = None

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
        scopes: Sequence[str] = (),
        backchannel_logout_uri: str = "",
        allow_signup: bool = False,
        client_name: str = "",
        logo_uri: str = "",
        client_uri: str = "",
        actor: str = "",
        client_ip: str = "",
    ) -> tuple[ClientInfo, str | None]:
        """Register a client; returns it and, for a confidential client, its secret (shown this once)."""
        name, grants, uris, logout_uris = _check_registration(
            name, grant_types or DEFAULT_GRANTS, redirect_uris, post_logout_redirect_uris, public, id_token_alg
        )
        registered_scopes = check_scopes(scopes)
        backchannel = check_backchannel_logout_uri(backchannel_logout_uri, allow_http=self._http_issuer)
        display = (check_client_name(client_name), check_logo_uri(logo_uri), check_client_uri(client_uri))
        secret = None if public else new_opaque(32)
        now = self._clock.now()
        row = Client(
            client_id=new_identifier(18),
            name=name,
            secret_hash=sha256_hex(secret) if secret else None,
            public=public,
            redirect_uris=json.dumps(uris),
            post_logout_redirect_uris=json.dumps(logout_uris),
            grant_types=" ".join(grants),
            require_mfa=require_mfa,
            require_consent=require_consent,
            id_token_alg=id_token_alg,
            scope=" ".join(registered_scopes),
            backchannel_logout_uri=backchannel,
            allow_signup=allow_signup,
            client_name=display[0],
            logo_uri=display[1],
            client_uri=display[2],
            created_at=now,
            updated_at=now,
        )
        async with self._db.transaction() as session:
            await store.insert_client(session, row)
            if actor:
                await self._audit.record(
                    session, "admin.client_created", actor=actor, client_ip=client_ip, client_id=row.client_id
                )
        return ClientInfo.from_row(row), secret

    async def list(self, *, after: str | None, limit: int) -> list[ClientInfo]:
        async with self._db.transaction() as session:
            rows = await store.list_clients(session, after=after, limit=limit)
        return [ClientInfo.from_row(row) for row in rows]

    async def update(self, client_id: str, changes: dict[str, Any], *, actor: str, client_ip: str) -> ClientInfo:
        """Change registration metadata; the same rules as at registration apply to the result."""
        # From the database, not the cache: a change made elsewhere within the last second must not be undone.
        self.cache.clear()
        current = await self.load(client_id)
        name, grants, uris, logout_uris = _check_registration(
            changes.get("name", current.name),
            changes.get("grant_types") or current.grant_types,
            changes.get("redirect_uris", current.redirect_uris),
            changes.get("post_logout_redirect_uris", current.post_logout_redirect_uris),
            current.public,
            changes.get("id_token_alg", current.id_token_alg),
        )
        values = {
            "name": name,
            "grant_types": " ".join(grants),
            "redirect_uris": json.dumps(uris),
            "post_logout_redirect_uris": json.dumps(logout_uris),
            "id_token_alg": changes.get("id_token_alg", current.id_token_alg),
            "require_mfa": changes.get("require_mfa", current.require_mfa),
            "require_consent": changes.get("require_consent", current.require_consent),
            "scope": " ".join(check_scopes(changes["scopes"]) if "scopes" in changes else current.scopes),
            "backchannel_logout_uri": check_backchannel_logout_uri(
                changes.get("backchannel_logout_uri", current.backchannel_logout_uri), allow_http=self._http_issuer
            ),
            "allow_signup": changes.get("allow_signup", current.allow_signup),
            "client_name": check_client_name(changes.get("client_name", current.client_name)),
            "logo_uri": check_logo_uri(changes.get("logo_uri", current.logo_uri)),
            "client_uri": check_client_uri(changes.get("client_uri", current.client_uri)),
            "updated_at": self._clock.now(),
        }
        async with self._db.transaction() as session:
            if not await store.update_client(session, client_id, values):
                raise NotFound("no such client")
            await store.bump_version(session)
            await self._audit.record(
                session,
                "admin.client_updated",
                actor=actor,
                client_ip=client_ip,
                client_id=client_id,
                fields=sorted(changes),
            )
        self.cache.clear()
        return await self.load(client_id)

    async def delete(self, client_id: str, *, actor: str, client_ip: str) -> None:
        async with self._db.transaction() as session:
            if len(client_id) > 64 or not await store.delete_client(session, client_id):
                raise NotFound("no such client")
            await store.bump_version(session)
            # Its tokens die with it: a deleted relying party must not keep access.
            revoked = await grants_store.revoke_tokens_of_client(session, client_id, self._clock.now())
            await self._audit.record(
                session,
                "admin.client_deleted",
                actor=actor,
                client_ip=client_ip,
                client_id=client_id,
                revoked=revoked,
            )
        self.cache.clear()  # here at once; on other replicas within CACHE_CHECK_SECONDS

    async def rotate_secret(self, client_id: str, *, actor: str, client_ip: str) -> str:
        """A new secret for a confidential client; the old one stops working at once."""
        client = await self.load(client_id)
        if client.public:
            raise InvalidInput("a public client has no secret")
        secret = new_opaque(32)
        async with self._db.transaction() as session:
            await store.update_client(
                session, client_id, {"secret_hash": sha256_hex(secret), "updated_at": self._clock.now()}
            )
            await store.bump_version(session)
            await self._audit.record(
                session, "admin.client_secret_rotated", actor=actor, client_ip=client_ip, client_id=client_id
            )
        self.cache.clear()  # the old secret stops working here at once; on other replicas within a second
        return secret

    async def find(self, client_id: str) -> ClientInfo | None:
        # PostgreSQL refuses NUL in text (an error, not "no such row"); no client id of ours holds one.
        if not client_id or len(client_id) > 64 or "\x00" in client_id:
            return None
        cache = self.cache
        if cache.due():
            cache.observe(await self._read_version())
        cached = cache.entries.get(client_id)
        if cached is not None:
            return cached
        generation = cache.generation
        row = await self._db.read(lambda session: store.find_client(session, client_id))
        if row is None:
            return None
        client = ClientInfo.from_row(row)
        cache.store(client, generation)
        return client

    async def _read_version(self) -> int:
        """The change counter, read once for every lookup that finds the cache due at the same time: under load
        tens of requests find it due in the same instant, and each reading it cost a statement apiece."""
        reading = self._version_read
        if reading is None:
            reading = self._version_read = asyncio.ensure_future(self._db.read(store.read_version))
            reading.add_done_callback(self._version_read_done)
        # Shielded: one waiter giving up (its client went away) does not cancel the read the others wait on.
        return await asyncio.shield(reading)

    def _version_read_done(self, reading: asyncio.Future[int]) -> None:
        if self._version_read is reading:
            self._version_read = None
        if not reading.cancelled():
            reading.exception()  # retrieved, so a failure nobody waited for is not reported as never retrieved

    async def load(self, client_id: str) -> ClientInfo:
        client = await self.find(client_id)
        if client is None:
            raise NotFound("no such client")
        return client
