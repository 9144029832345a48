"""Passkeys over HTTP with a software authenticator (INTERFACE §4): adding one turns two-step verification on,
the second step with it gives `amr` hwk/swk, and every forged or replayed answer is refused with nothing changed."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from idp.clock import FrozenClock
from idp.config import Settings
from idp.store.models import AuditEvent, BackupCode, LoginSession, Passkey, WebauthnChallenge
from tests.conftest import Running
from tests.http.account.conftest import deliver_mail
from tests.support.admin import admin_client
from tests.support.mfa import authenticator_added_elsewhere, codes_from
from tests.support.oidc import auth_params, decode_id_token, exchange, make_client, query_of
from tests.support.pages import PASSWORD, csrf_from, csrf_token, make_user, submit_login
from tests.support.passkeys import SoftAuthenticator, creation_options_from, request_options_from
from tests.support.smtp import SmtpServer, text_of

EMAIL = "person@example.com"
StartApp = Callable[[Settings], Coroutine[Any, Any, Running]]


async def signed_in(running: Running, client: httpx.AsyncClient, email: str = EMAIL) -> str:
    user = await make_user(running.idp, email)
    assert (await submit_login(client, email, PASSWORD)).status_code == 303
    return user.id


async def sign_out(client: httpx.AsyncClient) -> None:
    await client.post("/logout", data={"csrf_token": await csrf_token(client, "/logout")})


async def add_passkey(client: httpx.AsyncClient, key: SoftAuthenticator, name: str = "My phone") -> httpx.Response:
    page = await client.get("/account/security/passkeys")
    assert page.status_code == 200, page.text
    credential = key.register(creation_options_from(page.text))
    added = await client.post(
        "/account/security/passkeys/add",
        data={"credential": credential, "name": name, "csrf_token": csrf_from(page.text)},
    )
    # The first passkey turns two-step verification on: its backup codes come by Post/Redirect/Get.
    if added.status_code == 303 and added.headers["location"].startswith("/account/security/backup-codes"):
        return await client.get(added.headers["location"])
    return added


async def password_step(client: httpx.AsyncClient, email: str = EMAIL) -> str:
    """Sign in with the password; returns the verify page (with its passkey options)."""
    login = await submit_login(client, email, PASSWORD)
    assert login.headers["location"].startswith("/login/verify")
    page = await client.get(login.headers["location"])
    assert page.status_code == 200
    return page.text


async def use_passkey(client: httpx.AsyncClient, page: str, credential: str, next_url: str = "") -> httpx.Response:
    data = {"credential": credential, "csrf_token": csrf_from(page)}
    if next_url:
        data["next"] = next_url
    return await client.post("/login/verify/passkey", data=data)


async def rows(running: Running) -> list[Passkey]:
    async with running.idp.db.transaction() as session:
        return list((await session.execute(select(Passkey))).scalars().all())


async def events(running: Running, type_: str) -> list[AuditEvent]:
    async with running.idp.db.transaction() as session:
        query = select(AuditEvent).where(AuditEvent.type == type_).order_by(AuditEvent.id)
        return list((await session.execute(query)).scalars().all())


async def test_first_passkey_turns_two_step_on_with_backup_codes(
    running: Running, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await signed_in(running, client)
    async with running.client() as other:
        await submit_login(other, EMAIL, PASSWORD)
        key = SoftAuthenticator()

        done = await add_passkey(client, key)

        assert done.status_code == 200
        assert len(codes_from(done.text)) == 8
        # Everyone else signed in with the password alone is signed out, as when an authenticator is enabled.
        assert (await other.get("/account")).status_code == 303
    page = await client.get("/account/security/passkeys")
    assert "My phone" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    [row] = await rows(running)
    assert row.credential_id == key.credential_id_b64
    assert not row.backup_eligible
    status = await client.get("/account/security")
    assert "8 backup codes left" in status.text
    assert "1 passkey<" in status.text
    assert 'href="/account/security/totp">Add an authenticator app' in status.text
    assert [e.outcome for e in await events(running, "passkey.added")] == ["success"]
    assert len(await events(running, "mfa.enabled")) == 1
    # The challenge was used up.
    async with running.idp.db.transaction() as session:
        query = select(func.count()).select_from(WebauthnChallenge).where(WebauthnChallenge.purpose == "register")
        assert (await session.execute(query)).scalar_one() <= 1  # the page just shown made a new one


@pytest.mark.parametrize(("synced", "method"), [(False, "hwk"), (True, "swk")])
async def test_second_step_with_a_passkey_gives_the_right_amr(
    running: Running, client: httpx.AsyncClient, clock: FrozenClock, synced: bool, method: str
) -> None:
    await signed_in(running, client)
    key = SoftAuthenticator(synced=synced)
    await add_passkey(client, key)
    rp = await make_client(running.idp, require_mfa=True)
    await sign_out(client)
    clock.advance(60)

    start = await client.get("/authorize", params=auth_params(rp))
    next_url = query_of(start.headers["location"])["next"]
    login = await submit_login(client, EMAIL, PASSWORD, next_url=next_url, form_page=start.headers["location"])
    page = await client.get(login.headers["location"])
    assert "Use a passkey" in page.text
    done = await use_passkey(client, page.text, key.assertion(request_options_from(page.text)), next_url)

    assert done.status_code == 303, done.text
    final = await client.get(done.headers["location"])
    answer = query_of(final.headers["location"])
    async with running.client() as backend:
        claims = await decode_id_token(backend, (await exchange(backend, rp, answer["code"])).json()["id_token"])
    assert claims["amr"] == ["pwd", method, "mfa"]
    assert claims["acr"] == "mfa"
    assert "Password and passkey" in (await client.get("/account/sessions")).text
    [row] = await rows(running)
    assert row.sign_count == 1
    assert row.last_used_at is not None
    assert len(await events(running, "passkey.used")) == 1


async def refused_and_nothing_changed(
    running: Running, client: httpx.AsyncClient, page: str, credential: str, before: Passkey
) -> None:
    response = await use_passkey(client, page, credential)
    assert response.status_code == 400
    assert "The passkey could not be checked" in response.text
    assert (await client.get("/account")).status_code == 303  # still not signed in
    [after] = await rows(running)
    assert (after.sign_count, after.last_used_at) == (before.sign_count, before.last_used_at)
    async with running.idp.db.transaction() as session:
        sessions = (await session.execute(select(LoginSession.methods, LoginSession.pending))).all()
    assert all(pending for _, pending in sessions)


async def registered_and_at_second_step(
    running: Running, client: httpx.AsyncClient, clock: FrozenClock
) -> tuple[SoftAuthenticator, str, Passkey]:
    await signed_in(running, client)
    key = SoftAuthenticator()
    await add_passkey(client, key)
    await sign_out(client)
    clock.advance(60)
    page = await password_step(client)
    [row] = await rows(running)
    return key, page, row


async def test_a_replayed_challenge_is_refused(running: Running, client: httpx.AsyncClient, clock: FrozenClock) -> None:
    key, page, _ = await registered_and_at_second_step(running, client, clock)
    options = request_options_from(page)
    answer = key.assertion(options)
    first = await use_passkey(client, page, answer)
    assert first.status_code == 303
    [used] = await rows(running)

    # The very same answer again: its challenge was used up by the first.
    again = await use_passkey(client, page, answer)
    assert again.status_code == 400
    # And in the next sign-in, an answer to the old challenge (with a counter that did move): the challenge
    # belonged to the session it was made for, and was single use.
    await sign_out(client)
    page = await password_step(client)
    assert json.loads(request_options_from(page))["challenge"] != json.loads(options)["challenge"]
    await refused_and_nothing_changed(running, client, page, key.assertion(options), used)
    reasons = [json.loads(e.details)["reason"] for e in await events(running, "mfa.failure")]
    assert reasons == ["no_challenge", "InvalidAuthenticationResponse"]


async def test_a_challenge_older_than_five_minutes_is_refused(
    running: Running, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    key, page, row = await registered_and_at_second_step(running, client, clock)
    clock.advance(5 * 60 + 1)
    await refused_and_nothing_changed(running, client, page, key.assertion(request_options_from(page)), row)


async def test_a_wrong_origin_is_refused(running: Running, client: httpx.AsyncClient, clock: FrozenClock) -> None:
    key, page, row = await registered_and_at_second_step(running, client, clock)
    forged = key.assertion(request_options_from(page), origin="http://evil.example")
    await refused_and_nothing_changed(running, client, page, forged, row)


async def test_a_wrong_rp_id_is_refused(running: Running, client: httpx.AsyncClient, clock: FrozenClock) -> None:
    key, page, row = await registered_and_at_second_step(running, client, clock)
    forged = key.assertion(request_options_from(page), rp_id="evil.example")
    await refused_and_nothing_changed(running, client, page, forged, row)


async def test_a_counter_going_backwards_is_refused_and_audited(
    running: Running, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    key, page, _ = await registered_and_at_second_step(running, client, clock)
    key.counter = 10
    assert (await use_passkey(client, page, key.assertion(request_options_from(page)))).status_code == 303
    [used] = await rows(running)
    assert used.sign_count == 11
    await sign_out(client)
    page = await password_step(client)

    # A clone of the authenticator, behind the original's counter.
    clone = key.assertion(request_options_from(page), counter=5)
    await refused_and_nothing_changed(running, client, page, clone, used)
    reasons = [json.loads(e.details)["reason"] for e in await events(running, "mfa.failure")]
    assert reasons == ["sign_count_not_increasing"]


async def test_a_passkey_of_another_person_is_refused(
    running: Running, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    _, page, row = await registered_and_at_second_step(running, client, clock)
    async with running.client() as other:
        await signed_in(running, other, "other@example.com")
        theirs = SoftAuthenticator()
        await add_passkey(other, theirs)
    [mine] = [r for r in await rows(running) if r.id == row.id]

    # The other person's passkey answering my challenge: a valid signature, but not one of my passkeys.
    response = await use_passkey(client, page, theirs.assertion(request_options_from(page)))

    assert response.status_code == 400
    assert (await client.get("/account")).status_code == 303
    after = {r.id: r for r in await rows(running)}
    assert after[mine.id].sign_count == mine.sign_count
    assert all(r.last_used_at is None for r in after.values())
    reasons = [json.loads(e.details)["reason"] for e in await events(running, "mfa.failure")]
    assert reasons == ["passkey_of_another_person"]


async def test_registration_with_a_wrong_origin_or_rp_id_or_a_replay_adds_nothing(
    running: Running, client: httpx.AsyncClient
) -> None:
    await signed_in(running, client)
    page = await client.get("/account/security/passkeys")
    options = creation_options_from(page.text)
    token = csrf_from(page.text)
    key = SoftAuthenticator()

    def add(credential: str) -> Coroutine[Any, Any, httpx.Response]:
        return client.post(
            "/account/security/passkeys/add", data={"credential": credential, "name": "x", "csrf_token": token}
        )

    assert (await add(key.register(options, origin="http://evil.example"))).status_code == 400
    assert (await add(key.register(options, rp_id="evil.example"))).status_code == 400
    assert (await add("not json")).status_code == 400
    assert (await add(json.dumps({"id": "x", "response": {}}))).status_code == 400
    assert await rows(running) == []
    missing_csrf = await client.post("/account/security/passkeys/add", data={"credential": "{}", "name": "z"})
    assert missing_csrf.status_code == 403
    # Refusals left the challenge alone; the right answer to it is taken, once.
    answer = key.register(options)
    # The first passkey turns two-step verification on: its backup codes follow by Post/Redirect/Get.
    first = await add(answer)
    assert (first.status_code, first.headers["location"]) == (303, "/account/security/backup-codes?done=enabled")
    assert (await add(answer)).status_code == 400
    assert (await add(SoftAuthenticator().register(options))).status_code == 400
    assert len(await rows(running)) == 1
    failures = [json.loads(e.details)["reason"] for e in await events(running, "passkey.add_failed")]
    # The replay found no challenge; the other authenticator answered one this session no longer holds.
    assert failures[-2:] == ["no_challenge", "InvalidRegistrationResponse"]


async def test_adding_needs_a_recent_sign_in_and_the_second_factor(
    running: Running, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await signed_in(running, client)
    clock.advance(16 * 60)
    page = await client.get("/account/security/passkeys")
    assert "data-passkey-create" not in page.text
    assert "reauth=1" in page.text
    refused = await client.post(
        "/account/security/passkeys/add",
        data={"credential": "{}", "name": "x", "csrf_token": await csrf_token(client, "/logout")},
    )
    assert refused.status_code == 303
    assert "reauth=1" in refused.headers["location"]
    assert await rows(running) == []


async def test_adding_with_two_step_on_needs_a_session_that_passed_it(
    running: Running, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    user_id = await signed_in(running, client)  # a password-only session
    await authenticator_added_elsewhere(running, user_id, clock.now())
    page = await client.get("/account/security/passkeys")
    assert "data-passkey-create" not in page.text
    assert "/login/verify?next=" in page.text
    refused = await client.post(
        "/account/security/passkeys/add",
        data={"credential": "{}", "name": "x", "csrf_token": await csrf_token(client, "/logout")},
    )
    assert refused.status_code == 303
    assert refused.headers["location"].startswith("/login/verify")
    assert await rows(running) == []


async def test_rename_and_remove_and_the_last_one_needs_a_backup_code(
    running: Running, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await signed_in(running, client)
    codes = codes_from((await add_passkey(client, SoftAuthenticator(), "Phone")).text)
    assert (await add_passkey(client, SoftAuthenticator(), "Laptop")).status_code == 303
    phone, laptop = await rows(running)
    page = await client.get("/account/security/passkeys")
    token = csrf_from(page.text)

    renamed = await client.post(
        "/account/security/passkeys/rename", data={"id": phone.id, "name": "  Old\tphone ", "csrf_token": token}
    )
    assert renamed.status_code == 303
    assert "Old phone" in (await client.get("/account/security/passkeys")).text
    # Not the last second factor: removed without a code.
    removed = await client.post("/account/security/passkeys/remove", data={"id": laptop.id, "csrf_token": token})
    assert removed.status_code == 303
    assert [r.id for r in await rows(running)] == [phone.id]

    # The last one: that is turning two-step verification off, which needs a current code.
    no_code = await client.post("/account/security/passkeys/remove", data={"id": phone.id, "csrf_token": token})
    assert no_code.status_code == 400
    assert len(await rows(running)) == 1
    off = await client.post(
        "/account/security/passkeys/remove", data={"id": phone.id, "code": codes[0], "csrf_token": token}
    )
    assert off.status_code == 303
    assert off.headers["location"] == "/account/security?done=disabled"
    assert await rows(running) == []
    async with running.idp.db.transaction() as session:
        assert (await session.execute(select(BackupCode))).first() is None
    assert len(await events(running, "mfa.disabled")) == 1
    # Next sign-in is the password alone.
    await sign_out(client)
    assert (await submit_login(client, EMAIL, PASSWORD)).headers["location"] == "/account"


async def test_someone_elses_passkey_cannot_be_renamed_or_removed(running: Running, client: httpx.AsyncClient) -> None:
    mine = await signed_in(running, client)
    await add_passkey(client, SoftAuthenticator())
    async with running.client() as other:
        await signed_in(running, other, "other@example.com")
        await add_passkey(other, SoftAuthenticator())
    [theirs] = [r for r in await rows(running) if r.user_id != mine]
    token = csrf_from((await client.get("/account/security/passkeys")).text)

    rename = await client.post(
        "/account/security/passkeys/rename", data={"id": theirs.id, "name": "mine", "csrf_token": token}
    )
    remove = await client.post("/account/security/passkeys/remove", data={"id": theirs.id, "csrf_token": token})

    assert (rename.status_code, remove.status_code) == (404, 404)
    assert {r.id: r.name for r in await rows(running)}[theirs.id] == theirs.name


async def test_admin_api_lists_passkeys_and_the_mfa_reset_removes_them(
    running: Running, client: httpx.AsyncClient
) -> None:
    user_id = await signed_in(running, client)
    key = SoftAuthenticator(synced=True)
    await add_passkey(client, key, "Synced phone")
    async with await admin_client(running) as admin:
        user = (await admin.get(f"/admin/api/users/{user_id}")).json()
        assert user["mfa"]["enabled"] is True
        [shown] = user["passkeys"]
        assert (shown["name"], shown["synced"], shown["backed_up"], shown["last_used_at"]) == (
            "Synced phone",
            True,
            True,
            None,
        )
        assert key.credential_id_b64 not in json.dumps(user)
        assert set(shown) == {"id", "name", "created_at", "last_used_at", "synced", "backed_up"}
        reset = await admin.post(f"/admin/api/users/{user_id}/mfa/reset", json={"reason": "lost phone"})
        assert reset.status_code == 200
        assert reset.json()["passkeys"] == []
        assert reset.json()["mfa"]["enabled"] is False
    assert await rows(running) == []


async def test_a_new_passkey_is_announced_by_email(
    start_app: StartApp, mail_settings: Callable[..., Settings], smtp: SmtpServer
) -> None:
    running = await start_app(mail_settings())
    async with running.client() as client:
        await signed_in(running, client)
        await add_passkey(client, SoftAuthenticator(), "Work laptop")
    await deliver_mail(running)
    [message] = smtp.inbox.to(EMAIL)
    assert "passkey" in message["Subject"]
    assert "Work laptop" in text_of(message)
    assert "http://testserver/account/security/passkeys" in text_of(message)


async def test_a_person_with_only_passkeys_has_two_step_verification_everywhere(
    running: Running, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    user_id = await signed_in(running, client)
    await add_passkey(client, SoftAuthenticator())
    await sign_out(client)

    # Sign-in waits for the second step; a password reset asks for it too.
    assert (await submit_login(client, EMAIL, PASSWORD)).headers["location"].startswith("/login/verify")
    assert (await client.get("/account")).status_code == 303
    link = await running.idp.accounts.reset_link_for_support(user_id, actor="test", send=False)
    token = link.split("token=", 1)[1]
    assert (await running.idp.accounts.check_reset_link(token)).needs_code
    status = await running.idp.mfa.status(user_id)
    assert (status.enabled, status.totp, status.passkeys, status.backup_codes_left) == (True, False, 1, 8)


# -- signing in with a passkey alone (IDP_PASSKEY_SIGNIN) ----------------------------------------------------------


async def test_passkey_sign_in_is_off_by_default(running: Running, client: httpx.AsyncClient) -> None:
    page = await client.get("/login")
    assert "data-passkey-get" not in page.text
    # Scripts come only from idp's own files on every page; the passkey script is simply not on this one.
    assert "passkeys.js" not in page.text
    refused = await client.post("/login/passkey", data={"credential": "{}", "csrf_token": csrf_from(page.text)})
    assert refused.status_code == 404


@pytest.mark.parametrize(("synced", "method"), [(False, "hwk"), (True, "swk")])
async def test_sign_in_with_a_passkey_alone(
    start_app: StartApp,
    make_settings: Callable[..., Settings],
    clock: FrozenClock,
    synced: bool,
    method: str,
) -> None:
    running = await start_app(make_settings(passkey_signin=True))
    rp = await make_client(running.idp, require_mfa=True)
    key = SoftAuthenticator(synced=synced)
    async with running.client() as client:
        await signed_in(running, client)
        await add_passkey(client, key)
        await sign_out(client)
        clock.advance(60)

        page = await client.get("/login")
        assert "Sign in with a passkey" in page.text
        proof = client.cookies["idp_passkey"]
        options = request_options_from(page.text)
        answer = key.assertion(options)
        done = await client.post(
            "/login/passkey", data={"credential": answer, "csrf_token": csrf_from(page.text), "next": "/account"}
        )
        assert done.status_code == 303, done.text
        assert done.headers["location"] == "/account"
        assert (await client.get("/account")).status_code == 200
        how = (await client.get("/account/sessions")).text
        assert "Passkey" in how
        assert "Password" not in how

        # The job board that demands two steps is answered at once: user verification made it two factors.
        start = await client.get("/authorize", params=auth_params(rp))
        code = query_of(start.headers["location"])["code"]
        async with running.client() as backend:
            claims = await decode_id_token(backend, (await exchange(backend, rp, code)).json()["id_token"])
        assert (claims["amr"], claims["acr"]) == ([method, "mfa"], "mfa")

        # The same answer with the same challenge again, from another browser: the challenge was spent.
        async with running.client() as thief:
            token = await csrf_token(thief, "/login")
            thief.cookies.delete("idp_passkey")  # the thief's own challenge, replaced by the stolen one
            thief.cookies.set("idp_passkey", proof)
            replay = await thief.post("/login/passkey", data={"credential": answer, "csrf_token": token})
            assert replay.status_code == 400
            # Even signed anew (a later counter) for the same challenge: spent.
            thief.cookies.delete("idp_passkey")
            thief.cookies.set("idp_passkey", proof)
            fresh = await thief.post("/login/passkey", data={"credential": key.assertion(options), "csrf_token": token})
            assert fresh.status_code == 400
            assert (await thief.get("/account")).status_code == 303
    [row] = await rows(running)
    assert row.sign_count == 1
    reasons = [json.loads(e.details)["reason"] for e in await events(running, "mfa.failure")]
    assert reasons == ["sign_count_not_increasing", "used_meanwhile"]


async def test_passkey_sign_in_needs_user_verification_and_a_known_passkey(
    start_app: StartApp, make_settings: Callable[..., Settings], clock: FrozenClock
) -> None:
    running = await start_app(make_settings(passkey_signin=True))
    no_uv = SoftAuthenticator(user_verified=False)
    async with running.client() as client:
        await signed_in(running, client)
        await add_passkey(client, no_uv)
        await sign_out(client)
        for answer in (
            lambda options: no_uv.assertion(options),  # presence only: not two factors
            lambda options: SoftAuthenticator().assertion(options),  # a passkey idp never saw
            lambda options: no_uv.assertion(options, origin="http://evil.example"),
        ):
            page = await client.get("/login")
            refused = await client.post(
                "/login/passkey",
                data={"credential": answer(request_options_from(page.text)), "csrf_token": csrf_from(page.text)},
            )
            assert refused.status_code == 400
            assert (await client.get("/account")).status_code == 303
    [row] = await rows(running)
    assert (row.sign_count, row.last_used_at) == (0, None)
    failures = [json.loads(e.details)["reason"] for e in await events(running, "mfa.failure")]
    unknown = [json.loads(e.details)["reason"] for e in await events(running, "login.failure")]
    assert failures == ["InvalidAuthenticationResponse", "InvalidAuthenticationResponse"]
    assert unknown == ["unknown_passkey"]
