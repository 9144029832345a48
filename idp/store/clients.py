"""SQL for relying-party clients."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from idp.errors import Conflict
from idp.store.models import CacheVersion, Client

CACHE_NAME = "clients"


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


async def bump_version(session: AsyncSession) -> None:
    """Count one change to the clients, in the transaction that makes it (an upsert: the row may be missing)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(CacheVersion).values(name=CACHE_NAME, version=1)
    statement = statement.on_conflict_do_update(index_elements=["name"], set_={"version": CacheVersion.version + 1})
    await session.execute(statement)


async def read_version(session: AsyncSession) -> int:
    """The clients' change counter (0 before the first change)."""
    version = await session.scalar(select(CacheVersion.version).where(CacheVersion.name == CACHE_NAME))
    return version or 0
