"""SQL for "export my data": the job boards a person is linked to (consents, their own ids, live grants)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from idp.store.models import Client, Consent, ExternalId, Token


@dataclass
class LinkedClient:
    """What ties a person to one job board."""

    client_id: str
    name: str
    consented_scope: str = ""
    consented_at: datetime | None = None
    external_ids: list[str] = field(default_factory=list)
    # The newest refresh token still usable: the board can act for the person until then.
    grant_expires_at: datetime | None = None


async def linked_clients(session: AsyncSession, user_id: str, now: datetime) -> list[LinkedClient]:
    """Every job board with a consent, an imported id or a live refresh token of the person, by client id."""
    found: dict[str, LinkedClient] = {}
    names = {
        client_id: name
        for client_id, name in (
            await session.execute(
                select(Client.client_id, Client.name).where(
                    Client.client_id.in_(
                        union(
                            select(Consent.client_id).where(Consent.user_id == user_id),
                            select(ExternalId.client_id).where(ExternalId.user_id == user_id),
                            select(Token.client_id).where(Token.user_id == user_id),
                        )
                    )
                )
            )
        ).all()
    }

    def entry(client_id: str) -> LinkedClient:
        return found.setdefault(client_id, LinkedClient(client_id=client_id, name=names.get(client_id, "")))

    for consent in (await session.execute(select(Consent).where(Consent.user_id == user_id))).scalars():
        linked = entry(consent.client_id)
        linked.consented_scope, linked.consented_at = consent.scope, consent.created_at
    for client_id, external_id in (
        await session.execute(select(ExternalId.client_id, ExternalId.external_id).where(ExternalId.user_id == user_id))
    ).all():
        entry(client_id).external_ids.append(external_id)
    live = (
        await session.execute(
            select(Token.client_id, func.max(Token.expires_at))
            .where(
                Token.user_id == user_id,
                Token.kind == "refresh",
                Token.revoked_at.is_(None),
                Token.used_at.is_(None),
                Token.expires_at > now,
            )
            .group_by(Token.client_id)
        )
    ).all()
    for client_id, expires_at in live:
        entry(client_id).grant_expires_at = expires_at
    return [found[k] for k in sorted(found)]
