"""The hot statements behave the same through SQLAlchemy and through asyncpg directly (PostgreSQL runs both; SQLite
runs the SQLAlchemy one), cost one statement each, and survive connections the server has dropped."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from idp.auth.tokens import new_opaque, sha256_hex
from idp.clock import FrozenClock
from idp.store.hot import AsyncpgHotStore, HotStore, OrmHotStore, Rotated, Rotation, TokenView, UserView
from idp.store.models import User
from tests.conftest import Running
from tests.support.pages import make_user


def stores(running: Running) -> list[HotStore]:
    db = running.idp.db
    assert db.is_sqlite or isinstance(db.hot, AsyncpgHotStore)
    return [OrmHotStore(db)] if db.is_sqlite else [OrmHotStore(db), db.hot]


def token_row(clock: FrozenClock, kind: str, user_id: str | None, **changes: object) -> dict[str, object]:
    now = clock.now()
    row: dict[str, object] = {
        "token_hash": sha256_hex(new_opaque(32)),
        "kind": kind,
        "grant_id": new_opaque(24),
        "client_id": "client-1",
        "user_id": user_id,
        "scope": "openid email",
        "sid": None,
        "auth_time": now if user_id else None,
        "amr": "pwd" if user_id else "",
        "acr": "pwd" if user_id else "",
        "created_at": now,
        "expires_at": now + timedelta(hours=1),
        "used_at": None,
        "revoked_at": None,
        "offline": False,
    }
    row.update(changes)
    return row


def view_of(row: dict[str, object]) -> TokenView:
    return TokenView(**{name: row[name] for name in TokenView.__slots__})  # type: ignore[arg-type]


async def test_both_implementations_insert_and_find_the_same(running: Running, clock: FrozenClock) -> None:
    user = await make_user(running.idp)
    for store in stores(running):
        service = token_row(clock, "access", None)
        pair = [token_row(clock, "access", user.id), token_row(clock, "refresh", user.id, offline=True)]
        await store.insert_tokens([service])
        await store.insert_tokens(pair)
        for reader in stores(running):
            assert await reader.find_token_with_user(service["token_hash"]) == (view_of(service), None)  # type: ignore[arg-type]
            person = UserView(user.id, user.email, user.name, False, False)
            for row in pair:
                assert await reader.find_token_with_user(row["token_hash"]) == (view_of(row), person)  # type: ignore[arg-type]
            assert await reader.find_token_with_user(sha256_hex("unknown")) is None


async def test_each_hot_statement_is_one_statement(running: Running, clock: FrozenClock) -> None:
    db = running.idp.db
    for store in stores(running):
        row = token_row(clock, "access", None)
        before = db.statements
        await store.insert_tokens([row])
        assert db.statements - before == 1
        before = db.statements
        await store.find_token_with_user(row["token_hash"])  # type: ignore[arg-type]
        assert db.statements - before == 1


def rotation_of(row: dict[str, object], clock: FrozenClock, *, requested: tuple[str, ...] | None = None,
                client_id: str = "client-1", with_refresh: bool = True) -> Rotation:  # fmt: skip
    now = clock.now()
    return Rotation(
        token_hash=str(row["token_hash"]),
        client_id=client_id,
        now=now,
        idle_before=now - timedelta(minutes=30),
        requested=requested,
        access_hash=sha256_hex(new_opaque(32)),
        access_expires_at=now + timedelta(hours=1),
        refresh_hash=sha256_hex(new_opaque(32)) if with_refresh else None,
        refresh_expires_at=now + timedelta(days=30),
    )


async def test_both_implementations_rotate_a_refresh_token_alike(running: Running, clock: FrozenClock) -> None:
    user = await make_user(running.idp)
    for store in stores(running):
        old = token_row(clock, "refresh", user.id, scope="openid email offline_access", offline=True)
        await store.insert_tokens([old])
        rotation = rotation_of(old, clock, requested=("email", "openid"))

        rotated = await store.rotate_refresh(rotation)

        assert rotated == Rotated(
            str(old["grant_id"]), user.id, None, False, clock.now(), "pwd", "pwd", "openid email", user.email, False
        )
        (used, _), (access, _), (refresh, _) = [
            await store.find_token_with_user(h)  # type: ignore[misc]
            for h in (str(old["token_hash"]), rotation.access_hash, str(rotation.refresh_hash))
        ]
        assert used.used_at == clock.now()
        assert (access.kind, access.scope, access.expires_at) == ("access", "openid email", rotation.access_expires_at)
        assert (refresh.kind, refresh.scope) == ("refresh", "openid email offline_access")
        assert await store.rotate_refresh(rotation_of(old, clock)) is None  # used once only


async def test_a_rotation_that_may_not_go_ahead_changes_nothing(running: Running, clock: FrozenClock) -> None:
    user = await make_user(running.idp)
    await make_user(running.idp, "off@example.com")
    for store in stores(running):
        live = token_row(clock, "refresh", user.id, offline=True)
        expired = token_row(clock, "refresh", user.id, offline=True, expires_at=clock.now() - timedelta(seconds=1))
        online_without_session = token_row(clock, "refresh", user.id, sid="no-such-session")
        await store.insert_tokens([live, expired])
        await store.insert_tokens([online_without_session])
        refused = [
            rotation_of(live, clock, requested=("openid", "profile")),  # profile was not granted
            rotation_of(live, clock, client_id="client-2"),  # another client's
            rotation_of(expired, clock),
            rotation_of(online_without_session, clock),
        ]
        for rotation in refused:
            before = await store.find_token_with_user(rotation.token_hash)
            assert await store.rotate_refresh(rotation) is None, rotation
            assert await store.find_token_with_user(rotation.token_hash) == before
            assert await store.find_token_with_user(rotation.access_hash) is None
        # Without the refresh_token grant, a rotation issues the access token only.
        bare = rotation_of(live, clock, with_refresh=False)
        assert await store.rotate_refresh(bare) is not None
        assert await store.find_token_with_user(bare.access_hash) is not None


async def test_a_disabled_persons_refresh_token_is_not_rotated(running: Running, clock: FrozenClock) -> None:
    user = await make_user(running.idp)
    rows = {store: token_row(clock, "refresh", user.id, offline=True) for store in stores(running)}
    for store, row in rows.items():
        await store.insert_tokens([row])
    # Only the flag (disabling through the service would also revoke the tokens): the rotation itself checks it.
    async with running.idp.db.transaction() as session:
        await session.execute(update(User).where(User.id == user.id).values(disabled=True))
    for store, row in rows.items():
        assert await store.rotate_refresh(rotation_of(row, clock)) is None
