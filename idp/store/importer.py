"""SQL for onboarding job boards: external ids, imported password hashes, and the batch reads and writes of an
import (a few statements per batch, not per line)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from idp.store.models import BackupCode, Client, ExternalId, LegacyPasswordHash, TotpCredential, User

# Stays well under SQLite's and asyncpg's bound-parameter ceilings for one IN list.
CHUNK = 500


def _chunks(values: Collection[str]) -> list[list[str]]:
    items = sorted(values)
    return [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]


async def legacy_hashes_of(session: AsyncSession, user_id: str) -> list[str]:
    """The imported hashes of one person, oldest first."""
    query = (
        select(LegacyPasswordHash.password_hash)
        .where(LegacyPasswordHash.user_id == user_id)
        .order_by(LegacyPasswordHash.id)
    )
    return list((await session.execute(query)).scalars().all())


async def lacks_backup_codes(session: AsyncSession, user_id: str) -> bool:
    """True when the person has an authenticator but has never had backup codes (it came with an import). The
    authenticator's row is locked, so two first sign-ins at once do not both hand out codes."""
    locked = select(TotpCredential.user_id).where(
        TotpCredential.user_id == user_id, TotpCredential.confirmed_at.is_not(None)
    )
    if session.get_bind().dialect.name == "postgresql":
        locked = locked.with_for_update()
    if (await session.execute(locked)).first() is None:
        return False
    query = select(BackupCode.id).where(BackupCode.user_id == user_id).limit(1)
    return (await session.execute(query)).first() is None


async def users_by_email(session: AsyncSession, emails_norm: Collection[str]) -> dict[str, User]:
    found: dict[str, User] = {}
    for chunk in _chunks(emails_norm):
        rows = (await session.execute(select(User).where(User.email_norm.in_(chunk)))).scalars().all()
        found.update((u.email_norm, u) for u in rows)
    return found


async def totp_of(session: AsyncSession, user_ids: Collection[str]) -> dict[str, TotpCredential]:
    found: dict[str, TotpCredential] = {}
    for chunk in _chunks(user_ids):
        query = select(TotpCredential).where(TotpCredential.user_id.in_(chunk))
        found.update((c.user_id, c) for c in (await session.execute(query)).scalars().all())
    return found


async def legacy_hashes_of_users(session: AsyncSession, user_ids: Collection[str]) -> set[tuple[str, str]]:
    """(user id, hash) pairs already imported for these people."""
    found: set[tuple[str, str]] = set()
    for chunk in _chunks(user_ids):
        query = select(LegacyPasswordHash.user_id, LegacyPasswordHash.password_hash).where(
            LegacyPasswordHash.user_id.in_(chunk)
        )
        found.update((row[0], row[1]) for row in (await session.execute(query)).all())
    return found


async def external_ids_of(session: AsyncSession, client_id: str, external_ids: Collection[str]) -> dict[str, str]:
    """external id -> user id for those of `external_ids` already linked at `client_id`."""
    found: dict[str, str] = {}
    for chunk in _chunks(external_ids):
        query = select(ExternalId.external_id, ExternalId.user_id).where(
            ExternalId.client_id == client_id, ExternalId.external_id.in_(chunk)
        )
        found.update((row[0], row[1]) for row in (await session.execute(query)).all())
    return found


async def existing_clients(session: AsyncSession, client_ids: Collection[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(client_ids):
        query = select(Client.client_id).where(Client.client_id.in_(chunk))
        found.update((await session.execute(query)).scalars().all())
    return found


async def insert_rows(
    session: AsyncSession,
    *,
    users: Sequence[dict[str, object]],
    external_ids: Sequence[dict[str, object]],
    legacy_hashes: Sequence[dict[str, object]],
    totp: Sequence[dict[str, object]],
) -> None:
    """A batch's new rows, one multi-row statement per table (users first: the others refer to them)."""
    for model, rows in (
        (User, users),
        (ExternalId, external_ids),
        (LegacyPasswordHash, legacy_hashes),
        (TotpCredential, totp),
    ):
        if rows:
            await session.execute(insert(model), list(rows))


async def fill_names(session: AsyncSession, names: dict[str, str], now: datetime) -> None:
    """Give a name to people who had none (a merge never replaces one set earlier)."""
    for user_id, name in names.items():
        await session.execute(update(User).where(User.id == user_id, User.name == "").values(name=name, updated_at=now))


async def subjects_of_client(session: AsyncSession, client_id: str) -> list[tuple[str, str]]:
    """(external id, user id) for every person linked at `client_id`, by external id."""
    query = (
        select(ExternalId.external_id, ExternalId.user_id)
        .where(ExternalId.client_id == client_id)
        .order_by(ExternalId.external_id)
    )
    return [(row[0], row[1]) for row in (await session.execute(query)).all()]


async def users_by_external_id(
    session: AsyncSession, external_id: str, *, after_id: str | None, limit: int
) -> Sequence[User]:
    """People linked under `external_id` at any client, ordered by id like the other user lists."""
    query = (
        select(User)
        .join(ExternalId, ExternalId.user_id == User.id)
        .where(ExternalId.external_id == external_id)
        .distinct()
        .order_by(User.id)
        .limit(limit)
    )
    if after_id is not None:
        query = query.where(User.id > after_id)
    return (await session.execute(query)).scalars().all()
