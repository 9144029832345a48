"""The writes that end a correct password (store.hot's finish_sign_in) are the same through SQLAlchemy and through
asyncpg's one statement: a second factor makes the session wait for the second step, keeps the account's failures
and writes the other audit event; the device is remembered once; only the caller's hits and keys go."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import func, select

from idp.auth.tokens import new_opaque, sha256_hex
from idp.clock import FrozenClock
from idp.store import ratelimit as ratelimit_store
from idp.store.hot import AUDIT_COLUMNS, SESSION_COLUMNS, HotStore, OrmHotStore, SignInFinish
from idp.store.models import AuditEvent, KnownDevice, LoginSession, RateLimitHit, TotpCredential, User
from tests.conftest import Running
from tests.store.test_hot import stores
from tests.support.pages import make_user


def finish_for(user: User, clock: FrozenClock, hit_ids: list[int], clear_key: str, device_hash: str) -> SignInFinish:
    now = clock.now()
    session = {
        "id_hash": sha256_hex(new_opaque(32)),
        "user_id": user.id,
        "created_at": now,
        "last_seen_at": now,
        "auth_time": now,
        "methods": "pwd",
        "sid": new_opaque(24),
        "client_ip": "192.0.2.7",
        "user_agent": "test agent",
    }
    assert tuple(session) == SESSION_COLUMNS

    def event(type_: str, **details: str) -> dict[str, object]:
        row: dict[str, object] = {
            "at": now,
            "type": type_,
            "outcome": "success",
            "actor": "",
            "user_id": user.id,
            "client_ip": "192.0.2.7",
            "details": json.dumps(details),
        }
        assert tuple(row) == AUDIT_COLUMNS
        return row

    return SignInFinish(
        user_id=user.id,
        session=session,
        expires_at=now + timedelta(days=14),
        pending_expires_at=now + timedelta(minutes=10),
        device_hash=device_hash,
        now=now,
        hit_ids=tuple(hit_ids),
        clear_keys=(clear_key,),
        signed_in_event=event("login.success", methods="pwd"),
        pending_event=event("login.password_ok"),
    )


async def scene(running: Running, clock: FrozenClock, email: str) -> tuple[User, list[int], str, list[int]]:
    """A person, the attempt's reservation (account and address keys), an earlier failure on the account key and
    a stranger's hit on another key."""
    user = await make_user(running.idp, email)
    account_key = "login:acct:" + new_opaque(16)
    async with running.idp.db.transaction() as session:
        reserved = await ratelimit_store.add_hits(session, [account_key, "login:addr:192.0.2.7"], clock.now())
        earlier = await ratelimit_store.add_hits(session, [account_key], clock.now() - timedelta(minutes=1))
        other = await ratelimit_store.add_hits(session, ["login:acct:someone-else"], clock.now())
    return user, reserved, account_key, earlier + other


async def remaining(running: Running, ids: list[int]) -> set[int]:
    async with running.idp.db.transaction() as session:
        found = await session.execute(select(RateLimitHit.id).where(RateLimitHit.id.in_(ids)))
        return set(found.scalars())


async def test_without_a_second_factor_the_person_is_signed_in(running: Running, clock: FrozenClock) -> None:
    for number, store in enumerate(stores(running)):
        user, reserved, account_key, (earlier, other) = await scene(running, clock, f"plain{number}@example.com")
        finish = finish_for(user, clock, reserved, account_key, sha256_hex(new_opaque(32)))
        before = running.idp.db.statements
        assert await store.finish_sign_in(finish) is False
        assert running.idp.db.statements - before == (5 if isinstance(store, OrmHotStore) else 1)

        async with running.idp.db.transaction() as session:
            row = await session.get(LoginSession, finish.session["id_hash"])
            assert row is not None
            assert (row.pending, row.expires_at, row.methods, row.sid) == (
                False,
                finish.expires_at,
                "pwd",
                finish.session["sid"],
            )
            assert await session.get(KnownDevice, finish.device_hash) is not None
            events = (await session.execute(select(AuditEvent).where(AuditEvent.user_id == user.id))).scalars()
            assert [(e.type, json.loads(e.details)) for e in events] == [("login.success", {"methods": "pwd"})]
        # The reservation and the account's earlier failure went; someone else's hit stayed.
        assert await remaining(running, [*reserved, earlier, other]) == {other}


async def test_a_second_factor_makes_the_session_wait_and_keeps_the_failures(
    running: Running, clock: FrozenClock
) -> None:
    for number, store in enumerate(stores(running)):
        user, reserved, account_key, (earlier, other) = await scene(running, clock, f"twostep{number}@example.com")
        async with running.idp.db.transaction() as session:
            session.add(
                TotpCredential(user_id=user.id, secret="sealed", created_at=clock.now(), confirmed_at=clock.now())
            )
        device_hash = sha256_hex(new_opaque(32))
        async with running.idp.db.transaction() as session:
            await ratelimit_store.remember_device(session, device_hash, user.id, clock.now())
        finish = finish_for(user, clock, reserved, account_key, device_hash)

        assert await store.finish_sign_in(finish) is True

        async with running.idp.db.transaction() as session:
            row = await session.get(LoginSession, finish.session["id_hash"])
            assert row is not None
            assert (row.pending, row.expires_at) == (True, finish.pending_expires_at)
            devices = await session.execute(select(func.count()).where(KnownDevice.key_hash == device_hash))
            assert devices.scalar() == 1  # already known: remembered once
            events = (await session.execute(select(AuditEvent).where(AuditEvent.user_id == user.id))).scalars()
            assert [e.type for e in events] == ["login.password_ok"]
        # Only the reservation went: the account's failures wait for the right code.
        assert await remaining(running, [*reserved, earlier, other]) == {earlier, other}


async def test_an_unconfirmed_authenticator_is_no_second_factor(running: Running, clock: FrozenClock) -> None:
    store: HotStore
    for number, store in enumerate(stores(running)):
        user, reserved, account_key, _ = await scene(running, clock, f"setup{number}@example.com")
        async with running.idp.db.transaction() as session:
            session.add(TotpCredential(user_id=user.id, secret="sealed", created_at=clock.now(), confirmed_at=None))
        finish = finish_for(user, clock, reserved, account_key, sha256_hex(new_opaque(32)))
        assert await store.finish_sign_in(finish) is False
