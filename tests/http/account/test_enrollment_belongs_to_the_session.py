"""INTERFACE §4: the secret on the enrollment page belongs to the browser session that opened it, confirming it
signs the person out everywhere else, and backup codes just shown stay readable for ten minutes at most."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from idp.clock import FrozenClock
from idp.store.models import LoginSession, TotpEnrollment
from tests.conftest import Running
from tests.support.mfa import codes_from, codes_page, secret_from, totp_code
from tests.support.pages import PASSWORD, csrf_from, make_user, submit_login

EMAIL = "person@example.com"


async def sign_in(browser: httpx.AsyncClient) -> None:
    assert (await submit_login(browser, EMAIL, PASSWORD)).status_code == 303


async def confirm(browser: httpx.AsyncClient, code: str) -> httpx.Response:
    page = await browser.get("/account/security/totp")
    return await browser.post("/account/security/totp", data={"code": code, "csrf_token": csrf_from(page.text)})


async def enrollment_rows(running: Running) -> int:
    async with running.idp.db.transaction() as session:
        return len((await session.execute(select(TotpEnrollment.session_id_hash))).all())


async def test_a_stranger_with_the_password_cannot_plant_the_authenticator_secret(
    running: Running, clock: FrozenClock
) -> None:
    await make_user(running.idp)
    async with running.client() as attacker, running.client("203.0.113.9") as owner:
        # The attacker knows the password and opens the enrollment page first.
        await sign_in(attacker)
        planted = secret_from((await attacker.get("/account/security/totp")).text)
        clock.advance(60)
        # The owner, minutes later, is shown a secret of their own, which survives a reload.
        await sign_in(owner)
        mine = secret_from((await owner.get("/account/security/totp")).text)
        assert mine != planted
        assert secret_from((await owner.get("/account/security/totp")).text) == mine
        assert secret_from((await attacker.get("/account/security/totp")).text) == planted
        # The attacker cannot confirm the owner's secret (were it learned) in their own session.
        stolen = await confirm(attacker, totp_code(mine, clock.now()))
        assert stolen.status_code == 400
        assert secret_from(stolen.text) == planted

        done = await codes_page(owner, await confirm(owner, totp_code(mine, clock.now())))

        assert done.status_code == 200, done.text
        assert len(codes_from(done.text)) == 8
        assert (await owner.get("/account")).status_code == 200
        # The attacker's session is gone, its pending secret with it...
        assert (await attacker.get("/account")).status_code == 303
        assert (await attacker.get("/account/security/totp")).headers["location"].startswith("/login?")
        assert await enrollment_rows(running) == 0
        # ...and signing in again, the second step refuses codes of the planted secret.
        clock.advance(30)
        login = await submit_login(attacker, EMAIL, PASSWORD)
        assert login.headers["location"].startswith("/login/verify")
        page = await attacker.get("/login/verify")
        for offset in (-1, 0, 1):
            refused = await attacker.post(
                "/login/verify",
                data={"code": totp_code(planted, clock.now(), offset), "csrf_token": csrf_from(page.text)},
            )
            assert refused.status_code == 400
        assert (await attacker.get("/account")).status_code == 303


async def test_a_pending_secret_expires_and_goes_with_its_session(running: Running, clock: FrozenClock) -> None:
    await make_user(running.idp)
    async with running.client() as browser:
        await sign_in(browser)
        first = secret_from((await browser.get("/account/security/totp")).text)
        clock.advance(14 * 60)
        assert secret_from((await browser.get("/account/security/totp")).text) == first
        clock.advance(2 * 60)
        async with running.idp.db.transaction() as session:
            await running.idp.sessions.purge_expired(session)
        assert await enrollment_rows(running) == 0  # housekeeping drops a setup nobody finished in time

        # The recent sign-in that enrolling asks for: a new session, a new secret.
        again = await submit_login(browser, EMAIL, PASSWORD, form_page="/login?reauth=1")
        assert again.status_code == 303
        second = secret_from((await browser.get("/account/security/totp")).text)
        assert second != first
        assert await enrollment_rows(running) == 1
        await browser.post("/logout", data={"csrf_token": csrf_from((await browser.get("/logout")).text)})
        assert await enrollment_rows(running) == 0  # signing out takes the pending secret along


async def fresh_codes_stored(running: Running) -> list[str | None]:
    async with running.idp.db.transaction() as session:
        return list((await session.execute(select(LoginSession.fresh_codes))).scalars().all())


async def test_backup_codes_just_shown_are_readable_for_ten_minutes_then_gone_from_the_session(
    running: Running, clock: FrozenClock
) -> None:
    await make_user(running.idp)
    async with running.client() as browser:
        await sign_in(browser)
        secret = secret_from((await browser.get("/account/security/totp")).text)
        codes = codes_from((await codes_page(browser, await confirm(browser, totp_code(secret, clock.now())))).text)
        assert len(codes) == 8
        clock.advance(9 * 60)
        download = await browser.get("/account/security/backup-codes/download")
        assert download.status_code == 200
        assert download.text.strip().splitlines()[1:] == codes

        clock.advance(60)

        for path in ("/account/security/backup-codes/download", "/account/security/backup-codes/print"):
            gone = await browser.get(path)
            assert gone.status_code == 410
            assert not set(codes) & set(gone.text.split())
        assert await fresh_codes_stored(running) == [None]
        assert (await browser.get("/account")).status_code == 200  # the session itself lives on


async def test_housekeeping_drops_fresh_backup_codes_nobody_came_back_for(running: Running, clock: FrozenClock) -> None:
    await make_user(running.idp)
    async with running.client() as browser:
        await sign_in(browser)
        secret = secret_from((await browser.get("/account/security/totp")).text)
        assert (await confirm(browser, totp_code(secret, clock.now()))).status_code == 303
        clock.advance(5 * 60)
        async with running.idp.db.transaction() as session:
            await running.idp.sessions.purge_expired(session)
        assert (await fresh_codes_stored(running))[0] is not None  # still within its ten minutes

        clock.advance(5 * 60)
        async with running.idp.db.transaction() as session:
            await running.idp.sessions.purge_expired(session)

        assert await fresh_codes_stored(running) == [None]
