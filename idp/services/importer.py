"""Onboarding a job board's accounts from JSON Lines (INTERFACE §7), one service under the CLI and the admin API.

Each line is checked on its own and answered on its own (`created`, `merged`, `unchanged` or `error` with a
reason); valid lines are written in batches, each batch one transaction, so an interrupted import leaves whole
batches behind and running the same file again finishes it (what is already there comes back `unchanged`).
No password is hashed here: imported hashes stay as they are until the person's first sign-in.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from idp.auth.crypto import Sealer
from idp.auth.legacy_hashes import check_legacy_hash
from idp.clock import Clock
from idp.errors import InvalidInput
from idp.services.audit import AuditLog
from idp.services.users import check_email, check_name, normalize_email
from idp.store import importer as store
from idp.store.db import Database
from idp.store.models import User

MAX_LINE_BYTES = 16_384
BATCH_LINES = 1000
MAX_CLIENT_ID_LENGTH = 64
MAX_EXTERNAL_ID_LENGTH = 255
FIELDS = frozenset({"email", "name", "email_verified", "password_hash", "totp_secret", "external_id"})
_BASE32 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
# 80 bits (what most authenticator apps accept as the least) to 1024 bits.
MIN_TOTP_SECRET, MAX_TOTP_SECRET = 16, 205


@dataclass(frozen=True)
class ImportLine:
    """One account, checked: every field within its limits and in a known format."""

    email: str
    email_norm: str
    name: str
    password_hash: str | None
    totp_secret: str | None
    client_id: str | None
    external_id: str | None
    # What the board knew: a new account starts verified when the board had verified the address.
    email_verified: bool = False


class TooLong:
    """Marks a line the reader cut off at MAX_LINE_BYTES (its contents are never looked at)."""


TOO_LONG = TooLong()


async def split_lines(chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes | TooLong]:
    """Lines of a byte stream, without their line ends; a line past MAX_LINE_BYTES comes out as TOO_LONG, read
    to its end but never held whole, so one huge line costs no memory."""
    buffer = b""
    skipping = False
    async for chunk in chunks:
        buffer += chunk
        while True:
            end = buffer.find(b"\n")
            if end < 0:
                if len(buffer) > MAX_LINE_BYTES:
                    if not skipping:
                        skipping = True
                    buffer = b""
                break
            line, buffer = buffer[:end], buffer[end + 1 :]
            if skipping or len(line) > MAX_LINE_BYTES:
                skipping = False
                yield TOO_LONG
            else:
                yield line.rstrip(b"\r")
    if skipping:
        yield TOO_LONG
    elif buffer.strip():
        yield buffer.rstrip(b"\r")


def parse_line(raw: bytes) -> ImportLine:
    """Check one JSON Lines record; InvalidInput naming the field and the rule (never echoing a hash or secret)."""
    try:
        data = json.loads(raw.decode("utf-8"), object_pairs_hook=_object)
    except UnicodeDecodeError:
        raise InvalidInput("line is not UTF-8") from None
    except _Repeated as exc:
        raise InvalidInput(f"field {str(exc)[:40]!r} is given twice") from None
    except (json.JSONDecodeError, RecursionError):
        raise InvalidInput("line is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidInput("line must be a JSON object")
    nested = data.get("external_id")
    for key, value in [*data.items(), *(nested.items() if isinstance(nested, dict) else [])]:
        if isinstance(value, str) and not _storable(value):
            raise InvalidInput(f"{str(key)[:40]} holds a NUL or an unpaired surrogate")
    unknown = sorted(str(k)[:40] for k in data if k not in FIELDS)
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r} (fields: {', '.join(sorted(FIELDS))})")
    email = data.get("email")
    if not isinstance(email, str):
        raise InvalidInput("email is required and must be a string")
    email = check_email(email)
    name = data.get("name", "")
    if not isinstance(name, str):
        raise InvalidInput("name must be a string")
    name = check_name(name)
    verified = data.get("email_verified")
    if verified is not None and not isinstance(verified, bool):
        raise InvalidInput("email_verified must be true or false")
    password_hash = data.get("password_hash")
    if password_hash is not None:
        if not isinstance(password_hash, str):
            raise InvalidInput("password_hash must be a string")
        check_legacy_hash(password_hash)
    secret = data.get("totp_secret")
    if secret is not None:
        secret = _check_totp_secret(secret)
    client_id, external_id = _check_external_id(data.get("external_id"))
    return ImportLine(
        email=email,
        email_norm=normalize_email(email),
        name=name,
        password_hash=password_hash,
        totp_secret=secret,
        client_id=client_id,
        external_id=external_id,
        email_verified=bool(verified),
    )


class _Repeated(Exception):
    pass


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _Repeated(key)
        result[key] = value
    return result


def _storable(text: str) -> bool:
    """Text both databases keep as given: no NUL (PostgreSQL refuses it) and valid UTF-8 (no lone surrogate)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_totp_secret(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidInput("totp_secret must be a base32 string")
    secret = "".join(value.split()).upper().rstrip("=")
    if not MIN_TOTP_SECRET <= len(secret) <= MAX_TOTP_SECRET:
        raise InvalidInput(f"totp_secret must have {MIN_TOTP_SECRET} to {MAX_TOTP_SECRET} base32 characters")
    if not set(secret) <= _BASE32:
        raise InvalidInput("totp_secret must be base32 (A-Z, 2-7)")
    try:
        base64.b32decode(secret + "=" * (-len(secret) % 8))
    except (binascii.Error, ValueError):
        raise InvalidInput("totp_secret must be base32 (A-Z, 2-7)") from None
    return secret


def _check_external_id(value: object) -> tuple[str | None, str | None]:
    if value is None:
        return None, None
    if not isinstance(value, dict) or set(value) != {"client_id", "id"}:
        raise InvalidInput('external_id must be {"client_id": "...", "id": "..."}')
    client_id, external_id = value["client_id"], value["id"]
    if isinstance(external_id, int) and not isinstance(external_id, bool):
        external_id = str(external_id)  # boards number their rows; "42" and 42 name one row
    if not isinstance(client_id, str) or not 1 <= len(client_id) <= MAX_CLIENT_ID_LENGTH or not client_id.isprintable():
        raise InvalidInput(f"external_id.client_id must be 1 to {MAX_CLIENT_ID_LENGTH} printable characters")
    if (
        not isinstance(external_id, str)
        or not 1 <= len(external_id) <= MAX_EXTERNAL_ID_LENGTH
        or not external_id.isprintable()
    ):
        raise InvalidInput(f"external_id.id must be 1 to {MAX_EXTERNAL_ID_LENGTH} printable characters")
    return client_id, external_id


@dataclass
class _Account:
    """What the batch knows of one person while deciding: existing rows plus this run's additions."""

    id: str
    name: str
    has_password: bool
    totp_secret: str | None  # in the clear, only in memory, to compare a second board's secret with
    has_totp: bool
    hashes: set[str] = field(default_factory=set)


@dataclass
class Summary:
    lines: int = 0
    created: int = 0
    merged: int = 0
    unchanged: int = 0
    error: int = 0
    conflicts: int = 0

    def as_dict(self, dry_run: bool) -> dict[str, Any]:
        return {
            "lines": self.lines,
            "created": self.created,
            "merged": self.merged,
            "unchanged": self.unchanged,
            "error": self.error,
            "conflicts": self.conflicts,
            "dry_run": dry_run,
        }


class _DryRun(Exception):
    """Raised at the end of a dry run so its one transaction rolls back."""


@dataclass
class _Batch:
    """Parsed lines of one batch, with the results of the lines refused before any database work."""

    lines: list[tuple[int, ImportLine]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)


class ImportService:
    """Run an import: results per line, then a summary; every created and merged account audited."""

    def __init__(self, db: Database, clock: Clock, audit: AuditLog, *, sealer: Sealer) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._sealer = sealer  # the TOTP sealer: imported secrets are sealed like enrolled ones

    async def run(
        self,
        chunks: AsyncIterable[bytes],
        *,
        dry_run: bool = False,
        actor: str,
        client_ip: str = "",
        batch_lines: int = BATCH_LINES,
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield `{"line", "status", ...}` per input line in order, then `{"summary": {...}}`."""
        summary = Summary()
        if dry_run:
            # One transaction for the whole run, rolled back: later lines see what earlier ones would have done.
            try:
                async with self._db.transaction() as session:
                    async for result in self._batches(chunks, summary, batch_lines, session, actor, client_ip):
                        yield result
                    raise _DryRun
            except _DryRun:
                pass
        else:
            async for result in self._batches(chunks, summary, batch_lines, None, actor, client_ip):
                yield result
            async with self._db.transaction() as session:
                await self._audit.record(
                    session, "import.completed", actor=actor, client_ip=client_ip, **summary.as_dict(False)
                )
        yield {"summary": summary.as_dict(dry_run)}

    async def _batches(
        self,
        chunks: AsyncIterable[bytes],
        summary: Summary,
        batch_lines: int,
        session: AsyncSession | None,
        actor: str,
        client_ip: str,
    ) -> AsyncIterator[dict[str, Any]]:
        batch = _Batch()
        number = 0
        async for raw in split_lines(chunks):
            number += 1
            if isinstance(raw, TooLong):
                batch.results.append(_error(number, f"line is longer than {MAX_LINE_BYTES} bytes"))
            elif not raw.strip():
                continue  # a blank line holds no account (it still counts in the line numbers)
            else:
                try:
                    batch.lines.append((number, parse_line(raw)))
                except InvalidInput as exc:
                    batch.results.append(_error(number, str(exc)))
            if len(batch.lines) + len(batch.results) >= batch_lines:
                for result in await self._write(batch, session, actor, client_ip):
                    _count(summary, result)
                    yield result
                batch = _Batch()
        if batch.lines or batch.results:
            for result in await self._write(batch, session, actor, client_ip):
                _count(summary, result)
                yield result

    async def _write(
        self, batch: _Batch, session: AsyncSession | None, actor: str, client_ip: str
    ) -> list[dict[str, Any]]:
        results = list(batch.results)
        if batch.lines:
            if session is not None:
                results += await self._apply(session, batch.lines, actor, client_ip)
            else:
                results += await self._apply_in_transaction(batch.lines, actor, client_ip)
        return sorted(results, key=lambda r: int(r["line"]))

    async def _apply_in_transaction(
        self, lines: list[tuple[int, ImportLine]], actor: str, client_ip: str
    ) -> list[dict[str, Any]]:
        # A concurrent sign-up or import may take an email or external id between our read and our write: the
        # batch rolls back whole and is decided again against what is there now.
        for _ in range(3):
            try:
                async with self._db.transaction() as session:
                    return await self._apply(session, lines, actor, client_ip)
            except IntegrityError:
                continue
        return [_error(n, "could not be written for a concurrent change; run the import again") for n, _ in lines]

    async def _apply(
        self, session: AsyncSession, lines: list[tuple[int, ImportLine]], actor: str, client_ip: str
    ) -> list[dict[str, Any]]:
        """Decide every line of the batch against the database and write the batch's rows together."""
        now = self._clock.now()
        existing = await store.users_by_email(session, {line.email_norm for _, line in lines})
        ids = [u.id for u in existing.values()]
        totps = await store.totp_of(session, ids)
        hashes = await store.legacy_hashes_of_users(session, ids)
        clients = await store.existing_clients(session, {line.client_id for _, line in lines if line.client_id})
        links: dict[tuple[str, str], str] = {}
        for client_id in clients:
            wanted = {line.external_id for _, line in lines if line.client_id == client_id and line.external_id}
            found = await store.external_ids_of(session, client_id, wanted)
            links.update(((client_id, ext), user_id) for ext, user_id in found.items())

        by_user: dict[str, set[str]] = {}
        for user_id, stored in hashes:
            by_user.setdefault(user_id, set()).add(stored)
        accounts: dict[str, _Account] = {}
        for email_norm, user in existing.items():
            cred = totps.get(user.id)
            accounts[email_norm] = _Account(
                id=user.id,
                name=user.name,
                has_password=user.password_hash is not None,
                totp_secret=self._sealer.open(cred.secret, aad=user.id).decode() if cred else None,
                has_totp=cred is not None,
                hashes=by_user.get(user.id, set()),
            )

        new_users: list[dict[str, object]] = []
        new_links: list[dict[str, object]] = []
        new_hashes: list[dict[str, object]] = []
        new_totp: list[dict[str, object]] = []
        names: dict[str, str] = {}
        results: list[dict[str, Any]] = []
        created: list[str] = []
        merged: list[str] = []
        conflicted: list[str] = []
        for number, line in lines:
            account = accounts.get(line.email_norm)
            if line.client_id is not None and line.client_id not in clients:
                results.append(_error(number, "external_id.client_id names no registered client"))
                continue
            link = (line.client_id, line.external_id) if line.client_id and line.external_id else None
            owner = links.get(link) if link else None
            if owner is not None and (account is None or owner != account.id):
                results.append(_error(number, "external_id is already linked to another account"))
                continue
            changed: list[str] = []
            conflicts: list[str] = []
            if account is None:
                account = _Account(
                    id=str(uuid.uuid4()), name=line.name, has_password=False, totp_secret=None, has_totp=False
                )
                accounts[line.email_norm] = account
                new_users.append(
                    {
                        "id": account.id,
                        "email": line.email,
                        "email_norm": line.email_norm,
                        "name": line.name,
                        "password_hash": None,
                        "email_verified": line.email_verified,
                        "disabled": False,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                status = "created"
            else:
                status = "merged"
                if line.name and not account.name:
                    account.name = line.name
                    names[account.id] = line.name
                    changed.append("name")
            if link and owner is None:
                links[link] = account.id
                new_links.append(
                    {"client_id": link[0], "external_id": link[1], "user_id": account.id, "created_at": now}
                )
                changed.append("external_id")
            # A password set here wins: the board's hash would never be tried, so it is not kept.
            if line.password_hash and not account.has_password and line.password_hash not in account.hashes:
                account.hashes.add(line.password_hash)
                new_hashes.append({"user_id": account.id, "password_hash": line.password_hash, "created_at": now})
                changed.append("password_hash")
            if line.totp_secret:
                if not account.has_totp:
                    account.has_totp, account.totp_secret = True, line.totp_secret
                    new_totp.append(
                        {
                            "user_id": account.id,
                            "secret": self._sealer.seal(line.totp_secret.encode(), aad=account.id),
                            "created_at": now,
                            # On from the first sign-in: the person already uses this authenticator.
                            "confirmed_at": now,
                            "last_step": None,
                        }
                    )
                    changed.append("totp_secret")
                elif account.totp_secret != line.totp_secret:
                    # Two authenticators for one person: which one they still have is not ours to guess.
                    conflicts.append("totp_secret")
            if status == "merged" and not changed:
                status = "unchanged"
            result: dict[str, Any] = {"line": number, "status": status, "id": account.id}
            if conflicts:
                result["conflicts"] = conflicts
                conflicted.append(account.id)
            results.append(result)
            if status == "created":
                created.append(account.id)
            elif status == "merged" and account.id not in created:
                merged.append(account.id)

        await store.insert_rows(
            session, users=new_users, external_ids=new_links, legacy_hashes=new_hashes, totp=new_totp
        )
        await store.fill_names(session, names, now)
        await self._audit.record_many(session, "import.user_created", created, actor=actor, client_ip=client_ip)
        await self._audit.record_many(
            session, "import.user_merged", sorted(set(merged)), actor=actor, client_ip=client_ip
        )
        await self._audit.record_many(
            session, "import.conflict", sorted(set(conflicted)), actor=actor, client_ip=client_ip, field="totp"
        )
        return results

    async def subjects(self, client_id: str) -> list[tuple[str, str]]:
        """(external id, sub) for the people linked at `client_id` (the `sub` is idp's user id)."""
        async with self._db.transaction() as session:
            if not await store.existing_clients(session, {client_id}):
                raise InvalidInput("no client with this client_id")
            return await store.subjects_of_client(session, client_id)

    async def find_by_external_id(self, external_id: str, *, after: str | None, limit: int) -> list[User]:
        """People linked under `external_id` at any client."""
        if len(external_id) > MAX_EXTERNAL_ID_LENGTH:
            return []
        async with self._db.transaction() as session:
            return list(await store.users_by_external_id(session, external_id, after_id=after, limit=limit))


def _error(number: int, reason: str) -> dict[str, Any]:
    return {"line": number, "status": "error", "reason": reason}


def _count(summary: Summary, result: dict[str, Any]) -> None:
    summary.lines += 1
    status = result["status"]
    setattr(summary, status, getattr(summary, status) + 1)
    if result.get("conflicts"):
        summary.conflicts += 1
