"""SQL for authenticator secrets and backup codes. Step acceptance is one conditional UPDATE, so a code
accepted on one replica is refused on every other."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from idp.store.models import BackupCode, TotpCredential


async def find_totp(session: AsyncSession, user_id: str) -> TotpCredential | None:
    return await session.get(TotpCredential, user_id)


async def has_confirmed_totp(session: AsyncSession, user_id: str) -> bool:
    query = select(TotpCredential.user_id).where(
        TotpCredential.user_id == user_id, TotpCredential.confirmed_at.is_not(None)
    )
    return (await session.execute(query)).first() is not None


async def put_pending_totp(session: AsyncSession, user_id: str, sealed_secret: str, now: datetime) -> None:
    """Replace an unconfirmed secret (never a confirmed one) with a new one."""
    await session.execute(
        delete(TotpCredential).where(TotpCredential.user_id == user_id, TotpCredential.confirmed_at.is_(None))
    )
    await session.execute(insert(TotpCredential), [{"user_id": user_id, "secret": sealed_secret, "created_at": now}])


async def confirm_totp(session: AsyncSession, user_id: str, step: int, now: datetime) -> bool:
    result = await session.execute(
        update(TotpCredential)
        .where(TotpCredential.user_id == user_id, TotpCredential.confirmed_at.is_(None))
        .values(confirmed_at=now, last_step=step)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def accept_step(session: AsyncSession, user_id: str, step: int) -> bool:
    """Record `step` as used; False when a step this late or later was already accepted (a replay)."""
    result = await session.execute(
        update(TotpCredential)
        .where(
            TotpCredential.user_id == user_id,
            TotpCredential.confirmed_at.is_not(None),
            (TotpCredential.last_step.is_(None)) | (TotpCredential.last_step < step),
        )
        .values(last_step=step)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def delete_totp(session: AsyncSession, user_id: str) -> None:
    await session.execute(delete(TotpCredential).where(TotpCredential.user_id == user_id))


async def replace_backup_codes(session: AsyncSession, user_id: str, hashes: list[str], now: datetime) -> None:
    await session.execute(delete(BackupCode).where(BackupCode.user_id == user_id))
    await session.execute(insert(BackupCode), [{"user_id": user_id, "code_hash": h, "created_at": now} for h in hashes])


async def use_backup_code(session: AsyncSession, user_id: str, code_hash: str, now: datetime) -> bool:
    result = await session.execute(
        update(BackupCode)
        .where(BackupCode.user_id == user_id, BackupCode.code_hash == code_hash, BackupCode.used_at.is_(None))
        .values(used_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def count_backup_codes_left(session: AsyncSession, user_id: str) -> int:
    query = select(func.count()).where(BackupCode.user_id == user_id, BackupCode.used_at.is_(None))
    return int((await session.execute(query)).scalar_one())


async def delete_backup_codes(session: AsyncSession, user_id: str) -> None:
    await session.execute(delete(BackupCode).where(BackupCode.user_id == user_id))
