"""SQL for relying-party clients."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from idp.errors import Conflict
from idp.store.models import Client


async def insert_client(session: AsyncSession, client: Client) -> Client:
    session.add(client)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict("a client with this id already exists") from None
    return client


async def find_client(session: AsyncSession, client_id: str) -> Client | None:
    return await session.get(Client, client_id)


async def list_clients(session: AsyncSession, *, after: str | None = None, limit: int = 50) -> Sequence[Client]:
    query = select(Client).order_by(Client.client_id).limit(limit)
    if after is not None:
        query = query.where(Client.client_id > after)
    return (await session.execute(query)).scalars().all()


async def delete_client(session: AsyncSession, client_id: str) -> bool:
    result = await session.execute(delete(Client).where(Client.client_id == client_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]  # DML runs to a CursorResult; execute() is typed Result


async def update_client(session: AsyncSession, client_id: str, values: dict[str, object]) -> bool:
    result = await session.execute(update(Client).where(Client.client_id == client_id).values(**values))
    return bool(result.rowcount)  # type: ignore[attr-defined]  # DML runs to a CursorResult; execute() is typed Result
