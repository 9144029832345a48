"""A signing key rotated on one replica is used by every replica within IDP_KEY_REFRESH_SECONDS, and published
and accepted by every replica at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

from idp.clock import FrozenClock
from idp.config import Settings
from idp.services.keys import ON_DEMAND_REFRESH_SECONDS
from tests.conftest import Running
from tests.support.oidc import LOGOUT_URI, RegisteredClient, auth_params, exchange, make_client, pkce_pair, query_of
from tests.support.pages import PASSWORD, make_user, submit_login

StartApp = Callable[[Settings], Coroutine[Any, Any, Running]]
REFRESH_SECONDS = 1


async def id_token_from(replica: Running, client: RegisteredClient) -> str:
    async with replica.client() as browser:
        assert (await submit_login(browser, "person@example.com", PASSWORD)).status_code == 303
        verifier, challenge = pkce_pair()
        response = await browser.get("/authorize", params=auth_params(client, challenge))
        code = query_of(response.headers["location"])["code"]
    async with replica.client() as backend:
        tokens = await exchange(backend, client, code, verifier)
    assert tokens.status_code == 200, tokens.text
    return str(tokens.json()["id_token"])


def kid_of(token: str) -> str:
    import base64
    import json

    head = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["kid"])


async def test_a_rotation_reaches_every_replica_within_the_refresh_interval(
    start_app: StartApp, pg_settings: Callable[..., Settings], clock: FrozenClock
) -> None:
    settings = pg_settings(key_refresh_seconds=REFRESH_SECONDS)
    a, b = await start_app(settings), await start_app(settings)
    await make_user(a.idp)
    rp = await make_client(a.idp)
    old = b.idp.key_ring.signer("RS256").kid
    assert a.idp.key_ring.signer("RS256").kid == old
    clock.advance(60)  # the newest key signs; a frozen clock would give both keys the same created_at

    rotated_at = time.monotonic()
    new_kids = await a.idp.key_ring.rotate()
    assert kid_of(await id_token_from(a, rp)) in new_kids

    # B signs with the new key by itself within the refresh interval (a bounded wait).
    while b.idp.key_ring.signer("RS256").kid == old:
        assert time.monotonic() - rotated_at < REFRESH_SECONDS + 2, "replica B still signs with the old key"
        await asyncio.sleep(0.05)
    assert kid_of(await id_token_from(b, rp)) in new_kids


async def test_a_key_rotated_elsewhere_is_published_and_accepted_at_once(
    start_app: StartApp, pg_settings: Callable[..., Settings], clock: FrozenClock
) -> None:
    # B's periodic refresh is an hour away: only the on-demand check can tell it about A's new key.
    settings = pg_settings(key_refresh_seconds=3600)
    a, b = await start_app(settings), await start_app(settings)
    await make_user(a.idp)
    rp = await make_client(a.idp)
    old = b.idp.key_ring.signer("RS256").kid
    await asyncio.sleep(ON_DEMAND_REFRESH_SECONDS)  # B's start-up load counts as a look at the database
    clock.advance(60)

    new_kids = await a.idp.key_ring.rotate()
    token = await id_token_from(a, rp)  # an RP handed this token may ask B for the key, or send B the hint

    assert kid_of(token) in new_kids
    async with b.client() as http:
        published = {key["kid"] for key in (await http.get("/jwks")).json()["keys"]}
        assert set(new_kids) | {old} <= published
        assert (await submit_login(http, "person@example.com", PASSWORD)).status_code == 303
        logout = await http.get("/end_session", params={"id_token_hint": token, "post_logout_redirect_uri": LOGOUT_URI})
    assert logout.status_code == 303, logout.text
    assert logout.headers["location"].startswith(LOGOUT_URI)


async def test_retiring_on_a_stale_replica_judges_by_the_database(
    start_app: StartApp, pg_settings: Callable[..., Settings], clock: FrozenClock
) -> None:
    # A long refresh interval: B has not seen A's rotation when the operator's retire request reaches it.
    settings = pg_settings(key_refresh_seconds=3600)
    a, b = await start_app(settings), await start_app(settings)
    old = a.idp.key_ring.signer("RS256").kid
    clock.advance(60)
    await a.idp.key_ring.rotate()

    await b.idp.key_ring.retire(old)  # no longer the signer anywhere: allowed

    assert old not in {key["kid"] for key in b.idp.key_ring.describe()}
