"""SQL for passkeys (WebAuthn credentials) and their challenges. A challenge is taken in one DELETE, so it is
used at most once on every replica; a sign counter moves forward in one conditional UPDATE."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from idp.store.models import Passkey, WebauthnChallenge


async def list_of_user(session: AsyncSession, user_id: str) -> Sequence[Passkey]:
    query = select(Passkey).where(Passkey.user_id == user_id).order_by(Passkey.created_at, Passkey.id)
    return (await session.execute(query)).scalars().all()


async def count_of_user(session: AsyncSession, user_id: str) -> int:
    query = select(func.count()).select_from(Passkey).where(Passkey.user_id == user_id)
    return int((await session.execute(query)).scalar_one())


async def find_by_credential_id(session: AsyncSession, credential_id: str) -> Passkey | None:
    query = select(Passkey).where(Passkey.credential_id == credential_id)
    return (await session.execute(query)).scalar_one_or_none()


async def find_of_user(session: AsyncSession, user_id: str, passkey_id: str) -> Passkey | None:
    query = select(Passkey).where(Passkey.id == passkey_id, Passkey.user_id == user_id)
    return (await session.execute(query)).scalar_one_or_none()


async def insert_passkey(session: AsyncSession, passkey: Passkey) -> None:
    session.add(passkey)
    await session.flush()


async def rename(session: AsyncSession, user_id: str, passkey_id: str, name: str) -> bool:
    result = await session.execute(
        update(Passkey).where(Passkey.id == passkey_id, Passkey.user_id == user_id).values(name=name)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]  # DML runs to a CursorResult; execute() is typed Result


async def delete_passkey(session: AsyncSession, user_id: str, passkey_id: str) -> bool:
    result = await session.execute(delete(Passkey).where(Passkey.id == passkey_id, Passkey.user_id == user_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]  # DML runs to a CursorResult; execute() is typed Result


async def lock_passkeys_of_user(session: AsyncSession, user_id: str) -> int:
    """Lock the person's passkeys until the transaction ends (PostgreSQL; SQLite has one writer at a time), so two
    removals at once cannot each leave the other as the last one; returns how many there are."""
    rows = await session.execute(select(Passkey.id).where(Passkey.user_id == user_id).with_for_update())
    return len(rows.all())


async def delete_all_of_user(session: AsyncSession, user_id: str) -> int:
    result = await session.execute(delete(Passkey).where(Passkey.user_id == user_id))
    return result.rowcount or 0  # type: ignore[attr-defined]  # DML runs to a CursorResult; execute() is typed Result


async def record_use(
    session: AsyncSession, passkey_id: str, old_count: int, new_count: int, backup_state: bool, now: datetime
) -> bool:
    """Move the counter from `old_count` to `new_count`; False when another replica moved it meanwhile."""
    result = await session.execute(
        update(Passkey)
        .where(Passkey.id == passkey_id, Passkey.sign_count == old_count)
        .values(sign_count=new_count, backup_state=backup_state, last_used_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]  # DML runs to a CursorResult; execute() is typed Result


async def find_challenge(session: AsyncSession, session_id_hash: str, purpose: str) -> WebauthnChallenge | None:
    """The challenge this sign-in session holds for `purpose`, if any."""
    return await session.get(WebauthnChallenge, (session_id_hash, purpose))


async def put_challenge(
    session: AsyncSession, session_id_hash: str, purpose: str, challenge: str, now: datetime
) -> None:
    """Give this sign-in session a new challenge for `purpose`, replacing the one it had."""
    await session.execute(
        delete(WebauthnChallenge).where(
            WebauthnChallenge.session_id_hash == session_id_hash, WebauthnChallenge.purpose == purpose
        )
    )
    await session.execute(
        insert(WebauthnChallenge),
        [{"session_id_hash": session_id_hash, "purpose": purpose, "challenge": challenge, "created_at": now}],
    )


async def consume_challenge(session: AsyncSession, session_id_hash: str, purpose: str, challenge: str) -> bool:
    """Use the challenge up, in the transaction of what it allowed; False when it was used (or replaced)
    meanwhile, so two requests answering one challenge never both succeed, on any replica."""
    result = await session.execute(
        delete(WebauthnChallenge).where(
            WebauthnChallenge.session_id_hash == session_id_hash,
            WebauthnChallenge.purpose == purpose,
            WebauthnChallenge.challenge == challenge,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]  # DML runs to a CursorResult; execute() is typed Result


async def delete_challenges_before(session: AsyncSession, before: datetime) -> int:
    """Housekeeping: challenges issued at or before `before` can no longer be answered."""
    result = await session.execute(delete(WebauthnChallenge).where(WebauthnChallenge.created_at <= before))
    return result.rowcount or 0  # type: ignore[attr-defined]  # DML runs to a CursorResult; execute() is typed Result
