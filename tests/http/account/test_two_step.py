"""Two-step verification over HTTP: enrollment, the second step at sign-in, backup codes, disable, step-up."""

from __future__ import annotations

import html
import re

import httpx
from sqlalchemy import select

from idp.clock import FrozenClock
from idp.store.models import AuditEvent, BackupCode, TotpCredential
from tests.conftest import Running
from tests.support.mfa import (
    authenticator_added_elsewhere,
    codes_from,
    codes_page,
    confirm_saved,
    enroll,
    secret_from,
    totp_code,
)
from tests.support.oidc import auth_params, decode_id_token, exchange, make_client, query_of
from tests.support.pages import PASSWORD, csrf_from, csrf_token, make_user, submit_login


async def signed_in(running: Running, client: httpx.AsyncClient) -> None:
    await make_user(running.idp)
    response = await submit_login(client, "person@example.com", PASSWORD)
    assert response.status_code == 303


async def sign_out(client: httpx.AsyncClient) -> None:
    await client.post("/logout", data={"csrf_token": await csrf_token(client, "/logout")})


async def test_enroll_shows_qr_key_and_eight_codes(
    running: Running, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await signed_in(running, client)
    page = await client.get("/account/security/totp")
    assert "<svg" in page.text
    assert 'id="totp-secret"' in page.text
    assert 'autocomplete="one-time-code"' in page.text
    assert 'inputmode="numeric"' in page.text
    secret = secret_from(page.text)
    # The pending secret survives a refresh and a wrong code.
    assert secret_from((await client.get("/account/security/totp")).text) == secret
    wrong = await client.post("/account/security/totp", data={"code": "000000", "csrf_token": csrf_from(page.text)})
    assert wrong.status_code == 400
    assert secret_from(wrong.text) == secret

    done = await client.post(
        "/account/security/totp", data={"code": totp_code(secret, clock.now()), "csrf_token": csrf_from(page.text)}
    )
    done = await codes_page(client, done)

    assert done.status_code == 200
    codes = codes_from(done.text)
    assert len(codes) == 8
    assert len(set(codes)) == 8
    download = await client.get("/account/security/backup-codes/download")
    assert download.headers["content-type"].startswith("text/plain")
    assert "attachment" in download.headers["content-disposition"]
    assert download.text.strip().splitlines()[1:] == codes
    async with running.idp.db.transaction() as session:
        stored = (await session.execute(select(BackupCode.code_hash))).scalars().all()
        cred = (await session.execute(select(TotpCredential))).scalar_one()
    assert len(stored) == 8
    assert not set(codes) & set(stored)
    assert secret not in cred.secret
    assert cred.confirmed_at is not None
    status = await client.get("/account/security")
    assert "8 backup codes left" in status.text


async def test_sign_in_needs_the_app_code_and_refuses_replay(
    running: Running, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await signed_in(running, client)
    secret, _ = await enroll(client, clock.now())
    await sign_out(client)
    clock.advance(60)

    response = await submit_login(client, "person@example.com", PASSWORD)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login/verify")
    # Not signed in yet.
    assert (await client.get("/account")).status_code == 303
    page = await client.get(response.headers["location"])
    assert "/login/recovery" in page.text
    code = totp_code(secret, clock.now())
    ok = await client.post(
        "/login/verify",
        data={"code": code[:3] + " " + code[3:], "csrf_token": csrf_from(page.text), "next": "/account"},
    )
    assert ok.status_code == 303
    assert (await client.get("/account")).status_code == 200

    # The same code again, in another browser: refused (replay), whatever the replica.
    async with running.client() as other:
        await submit_login(other, "person@example.com", PASSWORD)
        page = await other.get("/login/verify")
        again = await other.post("/login/verify", data={"code": code, "csrf_token": csrf_from(page.text)})
        assert again.status_code == 400
        assert "not valid" in again.text


async def test_backup_code_sign_in_is_single_use_and_says_how_many_left(
    running: Running, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await signed_in(running, client)
    _, codes = await enroll(client, clock.now())
    await sign_out(client)

    await submit_login(client, "person@example.com", PASSWORD)
    page = await client.get("/login/recovery")
    done = await client.post("/login/recovery", data={"code": codes[3].upper(), "csrf_token": csrf_from(page.text)})
    assert done.status_code == 200
    assert "7 backup codes left" in done.text
    await sign_out(client)

    await submit_login(client, "person@example.com", PASSWORD)
    page = await client.get("/login/recovery")
    reused = await client.post("/login/recovery", data={"code": codes[3], "csrf_token": csrf_from(page.text)})
    assert reused.status_code == 400
    async with running.idp.db.transaction() as session:
        types = (await session.execute(select(AuditEvent.type))).scalars().all()
    assert "mfa.backup_code_used" in types
    assert "mfa.failure" in types


async def test_amr_and_acr_after_each_second_factor(
    running: Running, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await signed_in(running, client)
    secret, codes = await enroll(client, clock.now())
    rp = await make_client(running.idp)
    await sign_out(client)

    for kind, expected in (("otp", ["pwd", "otp", "mfa"]), ("backup", ["pwd", "mfa"])):
        clock.advance(31)
        params = auth_params(rp)
        start = await client.get("/authorize", params=params)
        login = await submit_login(
            client,
            "person@example.com",
            PASSWORD,
            next_url=query_of(start.headers["location"])["next"],
            form_page=start.headers["location"],
        )
        verify_path = login.headers["location"]
        page = await client.get(
            verify_path if kind == "otp" else verify_path.replace("/login/verify", "/login/recovery")
        )
        code = totp_code(secret, clock.now()) if kind == "otp" else codes[0]
        target = "/login/verify" if kind == "otp" else "/login/recovery"
        done = await client.post(
            target, data={"code": code, "csrf_token": csrf_from(page.text), "next": query_of(verify_path)["next"]}
        )
        next_url = done.headers["location"] if kind == "otp" else query_of_link(done.text)
        final = await client.get(next_url)
        answer = query_of(final.headers["location"])
        async with running.client() as backend:
            tokens = (await exchange(backend, rp, answer["code"])).json()
            claims = await decode_id_token(backend, tokens["id_token"])
        assert claims["amr"] == expected
        assert claims["acr"] == "mfa"
        await sign_out(client)


def query_of_link(page: str) -> str:
    match = re.search(r'class="button primary" href="([^"]+)"', page)
    assert match
    return html.unescape(match.group(1))


async def test_step_up_asks_only_for_the_second_factor(
    running: Running, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await signed_in(running, client)  # a password-only session
    rp = await make_client(running.idp)
    # The account gets its authenticator by import while this session is open: the session stays password-only.
    # (Enrolling in another browser would end this session instead.)
    person = (await running.idp.users.list(email="person@example.com", after=None, limit=1))[0]
    secret = await authenticator_added_elsewhere(running, person.id, clock.now())
    clock.advance(31)

    params = auth_params(rp, acr_values="mfa")
    start = await client.get("/authorize", params=params)

    assert start.headers["location"].startswith("/login/verify?")  # no password asked again
    page = await client.get(start.headers["location"])
    assert page.status_code == 200
    done = await client.post(
        "/login/verify",
        data={
            "code": totp_code(secret, clock.now()),
            "csrf_token": csrf_from(page.text),
            "next": query_of(start.headers["location"])["next"],
        },
    )
    final = await client.get(done.headers["location"])
    answer = query_of(final.headers["location"])
    async with running.client() as backend:
        claims = await decode_id_token(backend, (await exchange(backend, rp, answer["code"])).json()["id_token"])
    assert (claims["acr"], claims["amr"]) == ("mfa", ["pwd", "otp", "mfa"])


async def test_step_up_without_two_step_goes_through_enrollment(
    running: Running, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await signed_in(running, client)
    rp = await make_client(running.idp, require_mfa=True)
    params = auth_params(rp)

    start = await client.get("/authorize", params=params)
    assert start.headers["location"].startswith("/login/verify?")
    setup = await client.get(start.headers["location"])
    assert setup.headers["location"].startswith("/account/security/totp?")
    page = await client.get(setup.headers["location"])
    secret = secret_from(page.text)
    next_value = re.search(r'name="next" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    done = await client.post(
        "/account/security/totp",
        data={
            "code": totp_code(secret, clock.now()),
            "csrf_token": csrf_from(page.text),
            "next": html.unescape(next_value),
        },
    )
    done = await codes_page(client, done)
    assert done.status_code == 200
    assert len(codes_from(done.text)) == 8
    # "I have saved these codes" goes on to the job board's authorization request.
    onward = await confirm_saved(client, done)
    assert onward.headers["location"].startswith("/authorize?")
    final = await client.get(onward.headers["location"])
    answer = query_of(final.headers["location"])
    async with running.client() as backend:
        tokens = (await exchange(backend, rp, answer["code"])).json()
        claims = await decode_id_token(backend, tokens["id_token"])
    assert claims["acr"] == "mfa"
    assert claims["amr"] == ["pwd", "otp", "mfa"]


async def test_disable_needs_a_code_and_ends_other_sessions(
    running: Running, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await signed_in(running, client)
    secret, codes = await enroll(client, clock.now())
    async with running.client() as other:
        await submit_login(other, "person@example.com", PASSWORD)
        page = await other.get("/login/verify")
        clock.advance(30)
        await other.post(
            "/login/verify", data={"code": totp_code(secret, clock.now()), "csrf_token": csrf_from(page.text)}
        )
        assert (await other.get("/account")).status_code == 200

        page = await client.get("/account/security")
        bad = await client.post(
            "/account/security/disable", data={"code": "123456", "csrf_token": csrf_from(page.text)}
        )
        assert bad.status_code == 400
        good = await client.post(
            "/account/security/disable", data={"code": codes[0], "csrf_token": csrf_from(page.text)}
        )
        assert good.status_code == 303
        assert (await other.get("/account")).status_code == 303
    assert (await client.get("/account")).status_code == 200
    async with running.idp.db.transaction() as session:
        assert (await session.execute(select(TotpCredential))).first() is None
        assert (await session.execute(select(BackupCode))).first() is None
