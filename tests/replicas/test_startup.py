"""Replicas started at the same moment on one empty PostgreSQL database agree on everything they generate.

With IDP_SECRET_KEY and IDP_ENCRYPTION_KEY unset each replica proposes a pair and the first one stored wins; the
first signing keys are created under an advisory lock, so no replica starts out signing with a key the others
have not loaded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sqlalchemy import func, select

from idp.app import create_app
from idp.config import Settings
from idp.services.keys import ALGORITHMS
from idp.store.migrate import upgrade
from idp.store.models import InstanceSecret, SigningKey
from tests.conftest import FAST_ARGON2, Running

REPLICAS = 6


def replica_settings(url: str) -> Settings:
    # No secret_key or encryption_key: the replicas must generate them and share them through the database.
    return Settings(_env_file=None, database_url=url, issuer="http://testserver", **FAST_ARGON2)  # type: ignore[call-arg]


async def start_together(url: str, count: int) -> tuple[list[Running], list[object]]:
    apps = [create_app(replica_settings(url)) for _ in range(count)]
    contexts = [app.router.lifespan_context(app) for app in apps]
    await asyncio.gather(*(context.__aenter__() for context in contexts))
    return [Running(app) for app in apps], contexts


async def stop_all(contexts: list[object]) -> None:
    for context in contexts:
        await context.__aexit__(None, None, None)  # type: ignore[attr-defined]


async def test_replicas_started_together_agree_on_generated_keys(fresh_pg: Callable[[], str]) -> None:
    url = fresh_pg()
    await asyncio.to_thread(upgrade, url)

    replicas, contexts = await start_together(url, REPLICAS)
    try:
        secrets = {(r.idp.keys.secret_key, r.idp.keys.encryption_key) for r in replicas}
        signers = {tuple(r.idp.key_ring.signer(alg).kid for alg in ALGORITHMS) for r in replicas}
        jwks = {r.idp.key_ring.jwks_bytes for r in replicas}
        async with replicas[0].idp.db.transaction() as session:
            stored = (await session.execute(select(InstanceSecret.name))).scalars().all()
            keys = (await session.execute(select(SigningKey.alg, func.count()).group_by(SigningKey.alg))).all()
    finally:
        await stop_all(contexts)

    assert len(secrets) == 1, "replicas generated different secret/encryption keys"
    secret_key, encryption_key = secrets.pop()
    assert len(secret_key) >= 32
    assert len(encryption_key) >= 32
    assert secret_key != encryption_key
    assert sorted(stored) == ["encryption_key", "secret_key"]
    assert len(signers) == 1, "replicas started out signing with different keys"
    assert len(jwks) == 1, "replicas publish different key sets"
    assert dict(keys) == dict.fromkeys(ALGORITHMS, 1), "more than one first key per algorithm"


async def test_a_replica_started_later_uses_the_stored_keys(fresh_pg: Callable[[], str]) -> None:
    url = fresh_pg()
    await asyncio.to_thread(upgrade, url)
    first, first_contexts = await start_together(url, 1)
    try:
        later, later_contexts = await start_together(url, 1)
        try:
            assert later[0].idp.keys == first[0].idp.keys
            assert later[0].idp.key_ring.jwks_bytes == first[0].idp.key_ring.jwks_bytes
        finally:
            await stop_all(later_contexts)
    finally:
        await stop_all(first_contexts)
