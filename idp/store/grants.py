"""SQL for authorization codes, access and refresh tokens, and consents.

Codes and refresh tokens are consumed with a conditional UPDATE ... RETURNING, so two concurrent redemptions
(on any replicas) cannot both succeed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, insert, literal_column, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from idp.store.models import AuthorizationCode, Consent, LoginSession, Token, User


async def insert_code(session: AsyncSession, values: dict[str, object]) -> None:
    await session.execute(insert(AuthorizationCode), [values])


def _user_enabled(user_id: ColumnElement[Any] | QueryableAttribute[Any]) -> ColumnElement[bool]:
    """Whether `user_id` names an existing, enabled person: folded into the RETURNING of the statement that
    consumes a code or a refresh token, so checking it costs no extra round trip."""
    return exists().where(User.id == user_id, User.disabled.is_(False))


async def consume_code(
    session: AsyncSession, code_hash: str, now: datetime
) -> tuple[AuthorizationCode, bool, dict[str, Any]] | None:
    """Mark the code used and return it with whether its user is still enabled and the user's `email` and
    `email_verified` (for the ID token, in the same round trip), or None if it is unknown or was already used."""
    result = await session.execute(
        update(AuthorizationCode)
        .where(AuthorizationCode.code_hash == code_hash, AuthorizationCode.consumed_at.is_(None))
        .values(consumed_at=now)
        .returning(
            AuthorizationCode,
            _user_enabled(AuthorizationCode.user_id),
            *_user_email(AuthorizationCode.user_id),
        )
    )
    row = result.first()
    return (row[0], bool(row[1]), _email_claims(row[2], row[3])) if row else None


def _user_email(user_id: ColumnElement[Any] | QueryableAttribute[Any]) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """The person's email and email_verified, folded into a RETURNING like `_user_enabled` (no extra round trip)."""
    return (
        select(User.email).where(User.id == user_id).scalar_subquery(),
        select(User.email_verified).where(User.id == user_id).scalar_subquery(),
    )


def _email_claims(email: str | None, verified: object) -> dict[str, Any]:
    return {"email": email, "email_verified": bool(verified)} if email is not None else {}


async def find_code_grant(session: AsyncSession, code_hash: str) -> str | None:
    """The grant id of a code that exists (used or not)."""
    return (
        await session.execute(select(AuthorizationCode.grant_id).where(AuthorizationCode.code_hash == code_hash))
    ).scalar_one_or_none()


async def insert_tokens(session: AsyncSession, rows: list[dict[str, object]]) -> None:
    await session.execute(insert(Token), rows)


def _live_session(
    sid: ColumnElement[Any] | QueryableAttribute[Any], now: datetime, idle_before: datetime
) -> ColumnElement[bool]:
    """Whether the IdP session `sid` is still on: signed in (not pending), within its absolute and idle limits."""
    return exists().where(
        LoginSession.sid == sid,
        LoginSession.pending.is_(False),
        LoginSession.expires_at > now,
        LoginSession.last_seen_at > idle_before,
    )


async def use_refresh_token(
    session: AsyncSession, token_hash: str, client_id: str, now: datetime, idle_before: datetime
) -> tuple[Token, bool, bool, dict[str, Any]] | None:
    """Mark a live refresh token of `client_id` used and return it with whether its user is still enabled,
    whether its IdP session is still on, and the user's email claims; None if unknown, another client's, used,
    revoked, or online with its session ended (expiry is the caller's). Another client's attempt leaves the
    token as it was.

    The session check is in this one statement, so online tokens cost no extra round trip (INTERFACE §3)."""
    live = _live_session(Token.sid, now, idle_before)
    # SQLAlchemy renders RETURNING columns without their table on SQLite, which would turn the correlation into
    # `sid = sid` (true for any live session): name the outer column explicitly there.
    live_returned = _live_session(literal_column(f"{Token.__tablename__}.sid"), now, idle_before)
    result = await session.execute(
        update(Token)
        .where(
            Token.token_hash == token_hash,
            Token.kind == "refresh",
            Token.client_id == client_id,
            Token.used_at.is_(None),
            Token.revoked_at.is_(None),
            Token.offline.is_(True) | live,
        )
        .values(used_at=now)
        .returning(Token, _user_enabled(Token.user_id), live_returned, *_user_email(Token.user_id))
    )
    row = result.first()
    return (row[0], bool(row[1]), bool(row[2]), _email_claims(row[3], row[4])) if row else None


async def find_token(session: AsyncSession, token_hash: str) -> Token | None:
    return await session.get(Token, token_hash)


async def find_token_with_user(session: AsyncSession, token_hash: str) -> tuple[Token, User | None] | None:
    """A token and its user (None for client_credentials tokens) in one round trip."""
    result = await session.execute(
        select(Token, User).outerjoin(User, User.id == Token.user_id).where(Token.token_hash == token_hash)
    )
    row = result.first()
    return (row[0], row[1]) if row else None


async def revoke_grant(session: AsyncSession, grant_id: str, now: datetime) -> int:
    """Revoke every token of a grant (a code's tokens, or a refresh family)."""
    result = await session.execute(
        update(Token).where(Token.grant_id == grant_id, Token.revoked_at.is_(None)).values(revoked_at=now)
    )
    return result.rowcount or 0  # type: ignore[attr-defined]  # DML runs to a CursorResult; execute() is typed Result


async def revoke_token(session: AsyncSession, token_hash: str, now: datetime) -> None:
    await session.execute(
        update(Token).where(Token.token_hash == token_hash, Token.revoked_at.is_(None)).values(revoked_at=now)
    )


async def delete_unredeemed_codes_of_user(session: AsyncSession, user_id: str) -> int:
    """Codes not yet redeemed stop working (deleted: a later attempt is an unknown code, not a replay)."""
    result = await session.execute(
        delete(AuthorizationCode).where(AuthorizationCode.user_id == user_id, AuthorizationCode.consumed_at.is_(None))
    )
    return result.rowcount or 0  # type: ignore[attr-defined]  # DML runs to a CursorResult; execute() is typed Result


async def revoke_tokens_of_user(session: AsyncSession, user_id: str, now: datetime) -> int:
    result = await session.execute(
        update(Token).where(Token.user_id == user_id, Token.revoked_at.is_(None)).values(revoked_at=now)
    )
    return result.rowcount or 0  # type: ignore[attr-defined]  # DML runs to a CursorResult; execute() is typed Result


async def find_consent(session: AsyncSession, user_id: str, client_id: str) -> Consent | None:
    return await session.get(Consent, (user_id, client_id))


async def save_consent(session: AsyncSession, user_id: str, client_id: str, scope: str, now: datetime) -> None:
    existing = await session.get(Consent, (user_id, client_id))
    if existing is None:
        session.add(Consent(user_id=user_id, client_id=client_id, scope=scope, created_at=now))
    else:
        existing.scope = scope
        existing.created_at = now
    await session.flush()


async def purge_expired(session: AsyncSession, before: datetime) -> None:
    """Housekeeping: codes and tokens whose lifetime ended before `before`."""
    await session.execute(delete(AuthorizationCode).where(AuthorizationCode.expires_at < before))
    await session.execute(delete(Token).where(Token.expires_at < before))


async def revoke_tokens_of_client(session: AsyncSession, client_id: str, now: datetime) -> int:
    result = await session.execute(
        update(Token).where(Token.client_id == client_id, Token.revoked_at.is_(None)).values(revoked_at=now)
    )
    return result.rowcount or 0  # type: ignore[attr-defined]  # DML runs to a CursorResult; execute() is typed Result
