"""SQL for authenticator secrets and backup codes. Step acceptance is one conditional UPDATE, so a code
accepted on one replica is refused on every other."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from idp.store.models import BackupCode, Passkey, TotpCredential, TotpEnrollment


async def find_totp(session: AsyncSession, user_id: str) -> TotpCredential | None:
    return await session.get(TotpCredential, user_id)


def _confirmed_totp(user_id: str) -> Select[str]:
    return select(TotpCredential.user_id).where(
        TotpCredential.user_id == user_id, TotpCredential.confirmed_at.is_not(None)
    )


async def has_confirmed_totp(session: AsyncSession, user_id: str) -> bool:
    """An authenticator app is set up and confirmed."""
    return (await session.execute(_confirmed_totp(user_id))).first() is not None


async def has_second_factor(session: AsyncSession, user_id: str) -> bool:
    """Two-step verification is on: a confirmed authenticator or at least one passkey (one statement)."""
    passkey = select(Passkey.id).where(Passkey.user_id == user_id)
    return bool((await session.execute(select(or_(_confirmed_totp(user_id).exists(), passkey.exists())))).scalar())


async def find_enrollment(session: AsyncSession, session_id_hash: str) -> TotpEnrollment | None:
    """The secret being set up by this sign-in session, if any."""
    return await session.get(TotpEnrollment, session_id_hash)


async def put_enrollment(session: AsyncSession, session_id_hash: str, sealed_secret: str, now: datetime) -> None:
    """Give this sign-in session a new secret to set up, replacing the one it had."""
    await session.execute(delete(TotpEnrollment).where(TotpEnrollment.session_id_hash == session_id_hash))
    await session.execute(
        insert(TotpEnrollment), [{"session_id_hash": session_id_hash, "secret": sealed_secret, "created_at": now}]
    )


async def delete_enrollments_before(session: AsyncSession, before: datetime) -> int:
    """Housekeeping: secrets whose setup was started at or before `before` can no longer be confirmed."""
    result = await session.execute(delete(TotpEnrollment).where(TotpEnrollment.created_at <= before))
    return result.rowcount or 0  # type: ignore[attr-defined]  # DML runs to a CursorResult; execute() is typed Result


async def enable_totp(session: AsyncSession, user_id: str, sealed_secret: str, step: int, now: datetime) -> bool:
    """Store the confirmed secret in one statement; False when two-step verification is already on (a
    concurrent confirmation won). An unconfirmed row left by an older release is replaced."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    values = {"secret": sealed_secret, "created_at": now, "confirmed_at": now, "last_step": step}
    statement = dialect.insert(TotpCredential).values(user_id=user_id, **values)
    statement = statement.on_conflict_do_update(
        index_elements=["user_id"], set_=values, where=TotpCredential.confirmed_at.is_(None)
    )
    result = await session.execute(statement)
    return bool(result.rowcount)  # type: ignore[attr-defined]  # DML runs to a CursorResult; execute() is typed Result


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
    return bool(result.rowcount)  # type: ignore[attr-defined]  # DML runs to a CursorResult; execute() is typed Result


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
    return bool(result.rowcount)  # type: ignore[attr-defined]  # DML runs to a CursorResult; execute() is typed Result


async def count_backup_codes_left(session: AsyncSession, user_id: str) -> int:
    query = select(func.count()).where(BackupCode.user_id == user_id, BackupCode.used_at.is_(None))
    return int((await session.execute(query)).scalar_one())


async def delete_backup_codes(session: AsyncSession, user_id: str) -> None:
    await session.execute(delete(BackupCode).where(BackupCode.user_id == user_id))
