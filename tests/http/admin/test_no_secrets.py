"""The audit log and the logs never hold a secret: a broad scenario collects every secret it uses, then every
row of audit_events (all columns) and every log line are searched for each of them (INTERFACE §5, §6)."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from idp.auth import backup_codes
from idp.auth.tokens import sha256_hex
from idp.clock import FrozenClock
from idp.logging import DRIVER_LOGGERS, JsonFormatter, quiet_drivers
from idp.store.models import AuditEvent
from tests.conftest import Running
from tests.support.admin import API, admin_client, refresh
from tests.support.mfa import codes_from, codes_page, enroll, totp_code
from tests.support.oidc import RegisteredClient, auth_params, exchange, pkce_pair, sign_in_and_authorize
from tests.support.pages import csrf_from, csrf_token, submit_login

EMAIL = "pat@example.com"
PASSWORD = "Quokka-Zebra-Password-4711"
# Every kind of event the issue lists must have happened in the scenario, so the search covers each of them.
EXPECTED_TYPES = {
    "login.success",
    "login.failure",
    "login.locked",
    "mfa.enabled",
    "mfa.failure",
    "mfa.backup_code_used",
    "mfa.backup_codes_regenerated",
    "mfa.disabled",
    "token.revoked",
    "token.refresh_reuse",
    "admin.token_created",
    "admin.token_revoked",
    "admin.user_created",
    "admin.client_created",
    "admin.client_secret_rotated",
    "admin.mfa_reset",
}


class Secrets:
    """Every secret value the scenario used; short numeric codes are matched as whole words only."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def add(self, label: str, value: str | None) -> None:
        assert value, f"{label} is empty: the scenario went wrong"
        self.values[label] = value

    def add_token(self, label: str, value: str) -> None:
        self.add(label, value)
        self.add(label + " (SHA-256)", sha256_hex(value))

    def add_backup_codes(self, label: str, codes: list[str]) -> None:
        assert len(codes) == 8, codes
        for n, code in enumerate(codes):
            self.add(f"{label} {n}", code)
            self.add(f"{label} {n} (normalized)", backup_codes.normalize(code))

    def found_in(self, text: str) -> list[str]:
        lowered = text.lower()
        leaks = []
        for label, value in self.values.items():
            if value.isdigit() and len(value) <= 8:
                if re.search(rf"(?<![0-9A-Za-z]){value}(?![0-9A-Za-z])", text):
                    leaks.append(label)
            elif value.lower() in lowered:
                leaks.append(label)
        return leaks


class _ServerOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith(("httpx", "httpcore"))


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(_ServerOnly())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    # The most a deployment logs: IDP_LOG_LEVEL=DEBUG, as configure_logging sets it up.
    root.setLevel(logging.DEBUG)
    quiet_drivers()
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
        for name in DRIVER_LOGGERS:
            logging.getLogger(name).setLevel(logging.NOTSET)


def keep_cookies(secrets: Secrets, browser: httpx.AsyncClient, label: str) -> None:
    for name in ("idp_session", "idp_csrf"):
        if name in browser.cookies:
            secrets.add(f"{label} cookie {name}", browser.cookies[name])


async def sign_out(browser: httpx.AsyncClient) -> None:
    await browser.post("/logout", data={"csrf_token": await csrf_token(browser, "/logout")})


async def code_flow(
    running: Running, browser: httpx.AsyncClient, rp: RegisteredClient, secrets: Secrets, label: str
) -> dict[str, str]:
    verifier, challenge = pkce_pair()
    answer = await sign_in_and_authorize(browser, auth_params(rp, challenge), email=EMAIL, password=PASSWORD)
    secrets.add(f"{label} authorization code", answer["code"])
    secrets.add(f"{label} PKCE verifier", verifier)
    async with running.client() as backend:
        response = await exchange(backend, rp, answer["code"], verifier)
    assert response.status_code == 200, response.text
    tokens: dict[str, str] = response.json()
    for kind in ("access_token", "refresh_token", "id_token"):
        secrets.add_token(f"{label} {kind}", tokens[kind])
    return tokens


async def test_no_secret_reaches_the_audit_table_or_the_logs(
    running: Running, client: httpx.AsyncClient, clock: FrozenClock, captured_logs: io.StringIO
) -> None:
    secrets = Secrets()
    browser = client

    # -- operators: admin tokens, a person and a job board through the API ------------------------------------
    token_row, admin_token = await running.idp.admin_tokens.create("ops")
    secrets.add_token("admin token", admin_token)
    async with running.client() as guesser:
        guess = "idpadm_" + "G" * 43
        secrets.add("guessed admin token", guess)
        assert (await guesser.get(f"{API}/users", headers={"Authorization": f"Bearer {guess}"})).status_code == 401
    admin = running.client()
    admin.headers["Authorization"] = f"Bearer {admin_token}"
    created = await admin.post(f"{API}/users", json={"email": EMAIL, "name": "Pat", "password": PASSWORD})
    assert created.status_code == 201
    user_id = created.json()["id"]
    secrets.add("password", PASSWORD)
    board = await admin.post(
        f"{API}/clients",
        json={
            "name": "Board",
            "redirect_uris": ["https://jobs.example/callback"],
            "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
        },
    )
    assert board.status_code == 201
    rp = RegisteredClient(board.json()["client_id"], board.json()["client_secret"])
    secrets.add("client secret", rp.secret)

    # -- sign-in: a wrong password, then the right one ---------------------------------------------------
    wrong_password = "Wrong-Pangolin-Password-0815"
    secrets.add("wrong password", wrong_password)
    assert (await submit_login(browser, EMAIL, wrong_password)).status_code == 400
    unknown_password = "Unknown-Person-Password-9999"
    secrets.add("password for an unknown email", unknown_password)
    assert (await submit_login(browser, "nobody@example.com", unknown_password)).status_code == 400
    # Someone types their password into the email field.
    assert (await submit_login(browser, "Misplaced-Password-In-Email-42", PASSWORD)).status_code == 400
    secrets.add("password typed as email", "Misplaced-Password-In-Email-42")
    assert (await submit_login(browser, EMAIL, PASSWORD)).status_code == 303
    keep_cookies(secrets, browser, "first sign-in")

    # -- enrollment: the TOTP secret, the code that confirmed it, eight backup codes --------------------------
    totp_secret, codes = await enroll(browser, clock.now())
    secrets.add("TOTP secret", totp_secret)
    secrets.add("enrollment code", totp_code(totp_secret, clock.now()))
    secrets.add_backup_codes("backup code", codes)
    keep_cookies(secrets, browser, "after enrollment")

    # -- tokens: issue, refresh, reuse, revoke, client credentials -------------------------------------------
    first = await code_flow(running, browser, rp, secrets, "first flow")
    refreshed = await refresh(running, rp, first["refresh_token"])
    assert refreshed.status_code == 200
    for kind in ("access_token", "refresh_token", "id_token"):
        secrets.add_token(f"refreshed {kind}", refreshed.json()[kind])
    reuse = await refresh(running, rp, first["refresh_token"])
    assert reuse.json()["error"] == "invalid_grant"
    second = await code_flow(running, browser, rp, secrets, "second flow")
    async with running.client() as backend:
        for kind in ("refresh_token", "access_token"):
            revoked = await backend.post("/revoke", data={"token": second[kind]}, auth=rp.basic)
            assert revoked.status_code == 200
        service = await backend.post("/token", data={"grant_type": "client_credentials"}, auth=rp.basic)
        secrets.add_token("client credentials access token", service.json()["access_token"])
        bad_secret = "Wrong-Client-Secret-Value-123"
        secrets.add("wrong client secret", bad_secret)
        refused = await backend.post(
            "/token", data={"grant_type": "client_credentials"}, auth=(rp.client_id, bad_secret)
        )
        assert refused.status_code == 401

    # -- the second step: a wrong code, a right code, a wrong and a right backup code -----------------------
    await sign_out(browser)
    clock.advance(31)
    await submit_login(browser, EMAIL, PASSWORD)
    page = await browser.get("/login/verify")
    wrong_code = totp_code(totp_secret, clock.now(), offset_steps=7)
    secrets.add("wrong TOTP code", wrong_code)
    wrong = await browser.post("/login/verify", data={"code": wrong_code, "csrf_token": csrf_from(page.text)})
    assert wrong.status_code == 400
    right_code = totp_code(totp_secret, clock.now())
    secrets.add("TOTP code at sign-in", right_code)
    ok = await browser.post("/login/verify", data={"code": right_code, "csrf_token": csrf_from(page.text)})
    assert ok.status_code == 303
    keep_cookies(secrets, browser, "TOTP sign-in")

    await sign_out(browser)
    await submit_login(browser, EMAIL, PASSWORD)
    page = await browser.get("/login/recovery")
    wrong_backup = "zzzzz-zzzzz"
    secrets.add("wrong backup code", wrong_backup)
    refused = await browser.post("/login/recovery", data={"code": wrong_backup, "csrf_token": csrf_from(page.text)})
    assert refused.status_code == 400
    used = await browser.post("/login/recovery", data={"code": codes[0], "csrf_token": csrf_from(page.text)})
    assert used.status_code == 200
    keep_cookies(secrets, browser, "backup-code sign-in")

    # -- regeneration, then disabling ----------------------------------------------------------------------
    page = await browser.get("/account/security")
    regenerated = await browser.post(
        "/account/security/backup-codes", data={"code": codes[1], "csrf_token": csrf_from(page.text)}
    )
    regenerated = await codes_page(browser, regenerated)
    assert regenerated.status_code == 200
    secrets.add_backup_codes("regenerated backup code", codes_from(regenerated.text))
    clock.advance(31)
    disable_code = totp_code(totp_secret, clock.now())
    secrets.add("TOTP code to disable", disable_code)
    page = await browser.get("/account/security")
    disabled = await browser.post(
        "/account/security/disable", data={"code": disable_code, "csrf_token": csrf_from(page.text)}
    )
    assert disabled.status_code == 303

    # -- a lockout of another account ----------------------------------------------------------------------
    other_password = "Other-Persons-Password-2468"
    await admin.post(f"{API}/users", json={"email": "other@example.com", "password": other_password})
    secrets.add("other password", other_password)
    async with running.client(ip="192.0.2.99") as attacker:
        for n in range(5):
            guess_password = f"Guessed-Password-Attempt-{n}"
            secrets.add(f"guessed password {n}", guess_password)
            assert (await submit_login(attacker, "other@example.com", guess_password)).status_code == 400
        assert (await submit_login(attacker, "other@example.com", other_password)).status_code == 429

    # -- operators again: rotation, a second admin token revoked, an assisted reset --------------------------
    rotated = await admin.post(f"{API}/clients/{rp.client_id}/secret")
    secrets.add("rotated client secret", rotated.json()["client_secret"])
    second_row, second_token = await running.idp.admin_tokens.create("temporary")
    secrets.add_token("second admin token", second_token)
    await running.idp.admin_tokens.revoke(second_row.id)
    async with running.client() as browser2:
        await submit_login(browser2, EMAIL, PASSWORD)
        await enroll(browser2, clock.now())
        keep_cookies(secrets, browser2, "before reset")
    reset = await admin.post(f"{API}/users/{user_id}/mfa/reset", json={"reason": "passport checked"})
    assert reset.status_code == 200
    async with await admin_client(running, "reader") as reader:
        assert (await reader.get(f"{API}/audit")).status_code == 200
    await admin.aclose()
    assert token_row.id

    # -- the search -------------------------------------------------------------------------------------------
    async with running.idp.db.transaction() as session:
        rows = (await session.execute(select(AuditEvent.__table__))).all()
    assert len(rows) > 30
    types = {row.type for row in rows}
    assert types >= EXPECTED_TYPES, EXPECTED_TYPES - types
    table_text = "\n".join(repr(tuple(row)) + " " + " ".join(str(v) for v in row) for row in rows)
    assert secrets.found_in(table_text) == []

    log_text = captured_logs.getvalue()
    assert log_text.count("\n") > 30
    assert secrets.found_in(log_text) == []
