"""A session ended while its request was being checked (here by an operator's revoke, which ends sessions as a
password reset does) does not come back: the second step and the authenticator's confirmation find it gone,
answer with the sign-in page, and change nothing. Before, each replaced the ended session with a new one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from idp.clock import FrozenClock
from idp.store.models import AuditEvent, LoginSession, TotpCredential, User
from tests.conftest import Running
from tests.support.mfa import enroll, secret_from, totp_code
from tests.support.pages import PASSWORD, csrf_from, csrf_token, make_user, submit_login

EMAIL = "person@example.com"


async def count(running: Running, query: Any) -> int:
    async with running.idp.db.transaction() as session:
        return int((await session.execute(select(func.count()).select_from(query))).scalar_one())


def ended_right_after(
    running: Running, user: User, call: Callable[..., Awaitable[Any]]
) -> Callable[..., Awaitable[Any]]:
    """`call`, then the operator ends every session of `user`: the end lands between the request's check and its
    last transaction, where two replicas can put it."""

    async def then_revoked(*args: Any, **kwargs: Any) -> Any:
        result = await call(*args, **kwargs)
        await running.idp.users.revoke_sessions(user.id, actor="operator:test", client_ip="198.51.100.7")
        return result

    return then_revoked


async def at_the_second_step(browser: httpx.AsyncClient, clock: FrozenClock) -> tuple[str, str]:
    """Two-step verification on, signed out, then the password again: the authenticator's secret and the page of
    the second step."""
    assert (await submit_login(browser, EMAIL, PASSWORD)).status_code == 303
    secret, _ = await enroll(browser, clock.now())
    await browser.post("/logout", data={"csrf_token": await csrf_token(browser, "/logout")})
    clock.advance(60)
    pending = await submit_login(browser, EMAIL, PASSWORD)
    assert pending.headers["location"].startswith("/login/verify")
    return secret, (await browser.get(pending.headers["location"])).text


async def second_step(browser: httpx.AsyncClient, clock: FrozenClock, secret: str, page: str) -> httpx.Response:
    data = {"code": totp_code(secret, clock.now()), "csrf_token": csrf_from(page), "next": "/account"}
    return await browser.post("/login/verify", data=data)


async def test_the_second_step_does_not_bring_back_a_session_ended_meanwhile(
    running: Running, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await make_user(running.idp)
    async with running.client() as browser:
        secret, page = await at_the_second_step(browser, clock)
        monkeypatch.setattr(running.idp.mfa, "verify", ended_right_after(running, user, running.idp.mfa.verify))

        answer = await second_step(browser, clock, secret, page)

        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/login?")
        assert (await browser.get("/account")).status_code == 303
    assert await count(running, select(LoginSession).subquery()) == 0
    second = select(AuditEvent).where(AuditEvent.type == "login.success", AuditEvent.details.contains('"second"'))
    assert await count(running, second.subquery()) == 0


async def test_confirming_an_authenticator_in_a_session_ended_meanwhile_turns_nothing_on(
    running: Running, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stranger with the password is setting up their own authenticator when the owner (or an operator) ends
    # every session: the stranger's confirmation must neither turn two-step verification on nor sign them in.
    user = await make_user(running.idp)
    async with running.client() as stranger:
        assert (await submit_login(stranger, EMAIL, PASSWORD)).status_code == 303
        page = await stranger.get("/account/security/totp")
        planted = secret_from(page.text)
        mfa = running.idp.mfa
        # `_reserve` runs after the pending secret was read and before the transaction that turns it on.
        monkeypatch.setattr(mfa, "_reserve", ended_right_after(running, user, mfa._reserve))

        answer = await stranger.post(
            "/account/security/totp",
            data={"code": totp_code(planted, clock.now()), "csrf_token": csrf_from(page.text)},
        )

        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/login?")
        assert (await stranger.get("/account")).status_code == 303
    assert await count(running, select(TotpCredential).subquery()) == 0
    assert await count(running, select(LoginSession).subquery()) == 0
    assert await count(running, select(AuditEvent).where(AuditEvent.type == "mfa.enabled").subquery()) == 0


async def test_without_an_end_meanwhile_both_go_through(running: Running, clock: FrozenClock) -> None:
    # The control for the two above: the same steps with nothing ended sign in and turn two-step verification on.
    await make_user(running.idp)
    async with running.client() as browser:
        secret, page = await at_the_second_step(browser, clock)
        answer = await second_step(browser, clock, secret, page)
        assert answer.headers["location"] == "/account"
        assert (await browser.get("/account")).status_code == 200
    assert await count(running, select(TotpCredential).subquery()) == 1
