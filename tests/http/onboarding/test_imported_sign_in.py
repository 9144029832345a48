"""Imported people sign in through the real /login form: the board's password works (every format), a wrong one
does not, the stored hash is idp's argon2id afterwards and the boards' hashes are gone; an imported authenticator
passes the second step with a pyotp code and gives amr pwd+otp; backup codes are shown once after that sign-in."""

from __future__ import annotations

import httpx
import pytest

from idp.clock import FrozenClock
from tests.conftest import Running
from tests.support.admin import admin_client
from tests.support.importing import events, import_lines, jsonl, legacy_of, statuses, user_row
from tests.support.legacy import PRODUCERS
from tests.support.mfa import codes_from, codes_page, totp_code
from tests.support.oidc import auth_params, decode_id_token, exchange, make_client, query_of
from tests.support.pages import csrf_from, submit_login

BOARD_PASSWORD = "the password from the old board"


async def _import(running: Running, *records: dict[str, object]) -> dict[str, object]:
    async with await admin_client(running) as admin:
        return await import_lines(admin, jsonl(*records))


@pytest.mark.parametrize("producer", sorted(PRODUCERS))
async def test_board_password_signs_in_once_then_it_is_argon2id(
    running: Running, client: httpx.AsyncClient, producer: str
) -> None:
    result = await _import(
        running, {"email": "Seeker@Example.com", "name": "Sam", "password_hash": PRODUCERS[producer](BOARD_PASSWORD)}
    )
    assert statuses(result) == ["created"]  # type: ignore[arg-type]

    wrong = await submit_login(client, "seeker@example.com", BOARD_PASSWORD + "!")
    assert wrong.status_code == 400
    user = await user_row(running, "seeker@example.com")
    assert user.password_hash is None
    assert len(await legacy_of(running, user.id)) == 1

    right = await submit_login(client, "seeker@example.com", BOARD_PASSWORD)
    assert right.status_code == 303, right.text
    assert right.headers["location"] == "/account"
    user = await user_row(running, "seeker@example.com")
    assert user.password_hash is not None
    assert user.password_hash.startswith("$argon2id$")
    assert await legacy_of(running, user.id) == []
    assert [e.type for e in await events(running, "login.imported")] == ["login.imported_password_adopted"]

    # From now on it is an ordinary idp password.
    async with running.client() as other:
        assert (await submit_login(other, "seeker@example.com", "wrong password")).status_code == 400
        assert (await submit_login(other, "seeker@example.com", BOARD_PASSWORD)).status_code == 303


async def test_merged_account_either_password_until_first_sign_in_keeps_the_one_that_matched(
    running: Running, client: httpx.AsyncClient
) -> None:
    board_a, board_b = await make_client(running.idp, "Board A"), await make_client(running.idp, "Board B")
    first = await _import(
        running,
        {
            "email": "both@example.com",
            "password_hash": PRODUCERS["bcrypt-2y"]("password on board A"),
            "external_id": {"client_id": board_a.client_id, "id": "a-1"},
        },
    )
    second = await _import(
        running,
        {
            "email": "BOTH@example.com",
            "password_hash": PRODUCERS["django"]("password on board B"),
            "external_id": {"client_id": board_b.client_id, "id": "b-9"},
        },
    )
    assert statuses(first) == ["created"]  # type: ignore[arg-type]
    assert statuses(second) == ["merged"]  # type: ignore[arg-type]
    user = await user_row(running, "both@example.com")
    assert len(await legacy_of(running, user.id)) == 2

    assert (await submit_login(client, "both@example.com", "password on board B")).status_code == 303
    user = await user_row(running, "both@example.com")
    assert user.password_hash is not None
    assert user.password_hash.startswith("$argon2id$")
    assert await legacy_of(running, user.id) == []
    async with running.client() as other:
        assert (await submit_login(other, "both@example.com", "password on board A")).status_code == 400
    async with running.client() as other:
        assert (await submit_login(other, "both@example.com", "password on board B")).status_code == 303


async def test_imported_authenticator_second_step_amr_and_backup_codes_once(
    running: Running, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    import pyotp

    secret = pyotp.random_base32()
    rp = await make_client(running.idp)
    await _import(
        running,
        {
            "email": "twostep@example.com",
            "password_hash": PRODUCERS["pbkdf2-sha256"](BOARD_PASSWORD),
            # Spaced and lower case, as apps display it: the same secret.
            "totp_secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)).lower(),
            "external_id": {"client_id": rp.client_id, "id": "42"},
        },
    )
    params = auth_params(rp)
    start = await client.get("/authorize", params=params)
    password = await submit_login(
        client,
        "twostep@example.com",
        BOARD_PASSWORD,
        next_url=query_of(start.headers["location"])["next"],
        form_page=start.headers["location"],
    )
    assert password.status_code == 303
    verify_path = password.headers["location"]
    assert verify_path.startswith("/login/verify")
    next_url = query_of(verify_path)["next"]
    verify_page = await client.get(verify_path)
    wrong = await client.post(
        "/login/verify", data={"code": "000000", "csrf_token": csrf_from(verify_page.text), "next": next_url}
    )
    assert wrong.status_code == 400
    done = await client.post(
        "/login/verify",
        data={"code": totp_code(secret, clock.now()), "csrf_token": csrf_from(verify_page.text), "next": next_url},
    )
    # The first second step shows eight new backup codes, then goes on to where the person was going.
    done = await codes_page(client, done)
    assert done.status_code == 200, done.text
    codes = codes_from(done.text)
    assert len(set(codes)) == 8
    assert [e.type for e in await events(running, "mfa.backup_codes_issued")] == ["mfa.backup_codes_issued"]
    assert secret not in str([e.details for e in await events(running, "")])
    download = await client.get("/account/security/backup-codes/download")
    assert download.text.strip().splitlines()[1:] == codes
    final = await client.get(next_url)
    answer = query_of(final.headers["location"])
    async with running.client() as backend:
        tokens = (await exchange(backend, rp, answer["code"])).json()
        claims = await decode_id_token(backend, tokens["id_token"])
    assert claims["amr"] == ["pwd", "otp", "mfa"]
    assert claims["acr"] == "mfa"

    # A backup code works; the next sign-in shows no new codes.
    async with running.client() as other:
        step = await submit_login(other, "twostep@example.com", BOARD_PASSWORD)
        assert step.headers["location"].startswith("/login/verify")
        page = await other.get("/login/recovery")
        used = await other.post("/login/recovery", data={"code": codes[0], "csrf_token": csrf_from(page.text)})
        assert used.status_code == 200
        assert "login/recovery_done" in used.text or codes_from(used.text) == []
    clock.advance(60)
    async with running.client() as third:
        await submit_login(third, "twostep@example.com", BOARD_PASSWORD)
        page = await third.get("/login/verify")
        again = await third.post(
            "/login/verify", data={"code": totp_code(secret, clock.now()), "csrf_token": csrf_from(page.text)}
        )
        assert again.status_code == 303


async def test_a_password_reset_drops_the_boards_hashes(running: Running, client: httpx.AsyncClient) -> None:
    """A password set at idp (here through a reset link) replaces the imported hashes: the old board's password
    stops working, even for an account that had never signed in here."""
    await _import(running, {"email": "reset@example.com", "password_hash": PRODUCERS["bcrypt-2b"](BOARD_PASSWORD)})
    user = await user_row(running, "reset@example.com")
    assert len(await legacy_of(running, user.id)) == 1

    url = await running.idp.accounts.reset_link_for_support(user.id, actor="test", send=False)
    token = httpx.URL(url).params["token"]
    await running.idp.accounts.reset_password(token, "a new passphrase of mine", "", client_ip="")

    assert await legacy_of(running, user.id) == []
    assert (await user_row(running, "reset@example.com")).password_hash.startswith("$argon2id$")  # type: ignore[union-attr]
    assert (await submit_login(client, "reset@example.com", BOARD_PASSWORD)).status_code == 400
    assert (await submit_login(client, "reset@example.com", "a new passphrase of mine")).status_code == 303
