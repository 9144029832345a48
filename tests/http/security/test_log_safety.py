"""No log line, at any level from any logger, holds a secret (INTERFACE §6) — also when the database fails in the
middle of requests.

A real uvicorn serves idp (so uvicorn's own error lines are there too) with logging set up as `idp serve` does at
IDP_LOG_LEVEL=DEBUG. A person signs in (wrong and right password), enrolls an authenticator, signs in with a
wrong code and a backup code through an RP's authorization request; the RP exchanges, refreshes, introspects and
revokes with its client secret; an operator uses the admin API. A staff member adds a passkey, signs in with it
(a forged answer first), and in the support console registers a client and makes an admin token, whose one-time
secrets the pages show. Then the database starts refusing writes and the same kinds of requests fail with 500.
Every secret the test saw or the database stores is looked for in every line.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pyotp
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from idp.container import Idp
from idp.logging import configure_logging
from idp.store.models import Base
from tests.conftest import PG_SERVER, run_sync, truncate_pg
from tests.support.live import EMAIL, PASSWORD, REDIRECT_URI, LiveIdp
from tests.support.mfa import codes_from, codes_page_sync, secret_from
from tests.support.pages import csrf_from
from tests.support.passkeys import SoftAuthenticator, creation_options_from, request_options_from
from tests.support.smtp import SmtpServer, links_in, smtp_server
from tests.support.tcp_proxy import TcpProxy

WRONG_PASSWORD = "a wrong but distinctive password 7Qz"
NEW_USER_PASSWORD = "the operator's new user password 4Kx"
STAFF_EMAIL = "staff@example.com"
STAFF_PASSWORD = "the staff member's own password 2Hm"
# The one-time secrets the console shows (as tests/http/console/test_console.py reads them).
CONSOLE_SECRET = re.compile(r'id="client-secret">([^<]+)<')
CONSOLE_TOKEN = re.compile(r'id="admin-token">([^<]+)<')
# Columns whose values are secrets at rest: hashes of passwords, tokens, codes and cookies, sealed keys.
SECRET_COLUMNS = {
    "password_hash",
    "secret_hash",
    "token_hash",
    "code_hash",
    "id_hash",
    "private_key",
    "secret",
    "value",
}
# Shapes no log line may hold whoever wrote it: a SHA-256/HMAC hex digest, an argon2 hash, a JWT.
SHAPES = {
    "sha256-hex": re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])"),
    "argon2": re.compile(r"\$argon2(?:id|i|d)\$"),
    "jwt": re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\."),
}
# The test's own HTTP client and SMTP server (aiosmtpd logs what it receives) are not the server.
SERVER_LOGGERS_ONLY = ("httpx", "httpcore", "mail.log")
_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "aiosqlite", "asyncpg", "sqlalchemy.engine")


class _ServerOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith(SERVER_LOGGERS_ONLY)


@pytest.fixture
def debug_logs() -> Iterator[io.StringIO]:
    """Logging as `idp serve` sets it up at IDP_LOG_LEVEL=DEBUG, written to a buffer; restored afterwards."""
    root = logging.getLogger()
    saved_root = (root.handlers[:], root.level)
    saved = {
        name: (lg.level, lg.propagate, lg.disabled, lg.handlers[:])
        for name in _LOGGERS
        if (lg := logging.getLogger(name))
    }
    configure_logging("DEBUG")
    stream = io.StringIO()
    (handler,) = root.handlers
    handler.setStream(stream)  # type: ignore[attr-defined]
    handler.addFilter(_ServerOnly())
    try:
        yield stream
    finally:
        root.handlers[:], level = saved_root
        root.setLevel(level)
        for name, (lvl, propagate, disabled, handlers) in saved.items():
            logger = logging.getLogger(name)
            logger.setLevel(lvl)
            logger.propagate, logger.disabled, logger.handlers[:] = propagate, disabled, handlers


class Seen:
    """Every secret the test handled, to be looked for in the logs."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def add(self, name: str, value: str | None) -> str:
        assert value, f"{name} is empty"
        self.values[f"{name}#{len(self.values)}"] = value
        return value

    def add_cookies(self, http: httpx.Client) -> None:
        for cookie in http.cookies.jar:
            if cookie.value and cookie.name != "idp_lang":
                self.add(f"cookie {cookie.name}", cookie.value)


def form_csrf(http: httpx.Client, path: str, seen: Seen) -> str:
    page = http.get(path)
    assert page.status_code == 200, (path, page.status_code, page.text[:300])
    return seen.add("csrf token", csrf_from(page.text))


def sign_in(
    http: httpx.Client, seen: Seen, password: str, next_url: str | None = None, email: str = EMAIL
) -> httpx.Response:
    path = "/login" + ("?" + urlencode({"next": next_url}) if next_url else "")
    data = {"username": email, "password": password, "csrf_token": form_csrf(http, path, seen)}
    if next_url:
        data["next"] = next_url
    return http.post("/login", data=data)


def normal_use(live: LiveIdp, seen: Seen) -> None:
    """Everything a day of real use sends through idp, with every secret noted."""
    base = live.issuer
    client_id, client_secret = live.make_client()
    seen.add("client secret", client_secret)
    seen.add("password", PASSWORD)
    seen.add("wrong password", WRONG_PASSWORD)
    live.make_user()

    with httpx.Client(base_url=base, follow_redirects=False, timeout=10) as browser:
        assert sign_in(browser, seen, WRONG_PASSWORD).status_code == 400
        assert sign_in(browser, seen, PASSWORD).status_code == 303
        seen.add_cookies(browser)

        # Two-step verification: a wrong code, then the right one; eight backup codes come back.
        page = browser.get("/account/security/totp")
        secret = seen.add("totp secret", secret_from(page.text))
        wrong = browser.post("/account/security/totp", data={"code": "000000", "csrf_token": csrf_from(page.text)})
        assert wrong.status_code == 400
        code = seen.add("totp code", pyotp.TOTP(secret).now())
        done = browser.post("/account/security/totp", data={"code": code, "csrf_token": csrf_from(page.text)})
        done = codes_page_sync(browser, done)
        assert done.status_code == 200, done.text[:300]
        backup_codes = [seen.add("backup code", c) for c in codes_from(done.text)]
        assert len(backup_codes) == 8
        seen.add_cookies(browser)
        browser.post("/logout", data={"csrf_token": form_csrf(browser, "/logout", seen)})

    # An RP's authorization request; sign-in with the password, a wrong code, then a backup code.
    state, nonce = seen.add("state", "state-Wq8tX3"), seen.add("nonce", "nonce-Lp5vR2")
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT_URI,
              "scope": "openid email profile", "state": state, "nonce": nonce}  # fmt: skip
    with httpx.Client(base_url=base, follow_redirects=False, timeout=10) as browser:
        start = browser.get("/authorize", params=params)
        assert start.status_code == 303, start.text[:300]
        next_url = parse_qs(urlsplit(start.headers["location"]).query)["next"][0]
        verify = sign_in(browser, seen, PASSWORD, next_url)
        assert verify.status_code == 303
        assert verify.headers["location"].startswith("/login/verify")
        data = {"code": "123456", "csrf_token": form_csrf(browser, "/login/verify", seen), "next": next_url}
        assert browser.post("/login/verify", data=data).status_code == 400
        data = {"code": backup_codes[0], "csrf_token": form_csrf(browser, "/login/recovery", seen), "next": next_url}
        assert browser.post("/login/recovery", data=data).status_code in (200, 303)
        seen.add_cookies(browser)
        answer = browser.get(next_url)
        assert answer.status_code == 303, answer.text[:300]
        query = parse_qs(urlsplit(answer.headers["location"]).query)
        code = seen.add("authorization code", query["code"][0])

    with httpx.Client(base_url=base, timeout=10) as rp:
        auth = (client_id, client_secret)
        tokens = rp.post("/token", data={"grant_type": "authorization_code", "code": code,
                                         "redirect_uri": REDIRECT_URI}, auth=auth).json()  # fmt: skip
        access = seen.add("access token", tokens["access_token"])
        seen.add("id token", tokens["id_token"])
        refresh = seen.add("refresh token", tokens["refresh_token"])
        refreshed = rp.post("/token", data={"grant_type": "refresh_token", "refresh_token": refresh}, auth=auth).json()
        seen.add("access token", refreshed["access_token"])
        seen.add("refresh token", refreshed["refresh_token"])
        assert rp.get("/userinfo", headers={"Authorization": f"Bearer {access}"}).status_code == 200
        assert rp.post("/introspect", data={"token": access}, auth=auth).json()["active"] is True
        # A wrong secret, and a reused refresh token (the family is revoked).
        assert rp.post("/introspect", data={"token": access}, auth=(client_id, client_secret + "x")).status_code == 401
        reuse = rp.post("/token", data={"grant_type": "refresh_token", "refresh_token": refresh}, auth=auth)
        assert reuse.status_code == 400
        assert rp.post("/revoke", data={"token": refreshed["refresh_token"]}, auth=auth).status_code == 200

    _, admin_token = live.call(lambda idp: idp.admin_tokens.create("ops"))
    seen.add("admin token", admin_token)
    with httpx.Client(base_url=base, timeout=10, headers={"Authorization": f"Bearer {admin_token}"}) as admin:
        assert admin.get("/admin/api/users", params={"email": EMAIL}).status_code == 200
        seen.add("password", NEW_USER_PASSWORD)
        created = admin.post("/admin/api/users", json={"email": "new@example.com", "password": NEW_USER_PASSWORD})
        assert created.status_code in (200, 201), created.text
        wrong = admin.get("/admin/api/users", headers={"Authorization": f"Bearer {admin_token}x"})
        assert wrong.status_code == 401


def wait_for_link(smtp: SmtpServer, email: str, path: str, seen: Seen) -> str:
    """The link to `path` in the newest email to `email` that has one (idp's outbox worker sends within a poll or
    two; security notices arrive in between)."""
    deadline = time.monotonic() + 20
    while not (links := [u for m in smtp.inbox.to(email) for u in links_in(m) if path in u]):
        assert time.monotonic() < deadline, f"no email to {email} with a {path} link"
        time.sleep(0.1)
    link = links[-1]
    seen.add("email link token", link.split("token=", 1)[1])
    return link


def self_service_use(live: LiveIdp, seen: Seen, smtp: SmtpServer) -> None:
    """Sign-up and verification, a forgotten password reset with a backup code, a password change, an email change
    and a deletion: the links (tokens) and passwords they carry must not reach a log either."""
    backup_code = [v for k, v in seen.values.items() if k.startswith("backup code")][1]
    new_password = seen.add("reset password", "a brand new reset password 3Rw")
    signup_password = seen.add("password", "the sign-up password of a new face 8Jd")
    changed_password = seen.add("password", "a changed password for the new face 5Gh")
    with httpx.Client(base_url=live.issuer, follow_redirects=False, timeout=10) as browser:
        data = {"email": EMAIL, "csrf_token": form_csrf(browser, "/password/forgot", seen)}
        assert browser.post("/password/forgot", data=data).status_code == 200
        link = wait_for_link(smtp, EMAIL, "/password/reset?token=", seen)
        page = browser.get(link)
        assert page.status_code == 200
        data = {"token": link.split("token=", 1)[1], "password": new_password, "code": backup_code,
                "csrf_token": csrf_from(page.text)}  # fmt: skip
        assert browser.post("/password/reset", data=data).status_code == 200

        newcomer = "newcomer@example.com"
        data = {"email": newcomer, "name": "New", "password": signup_password,
                "csrf_token": form_csrf(browser, "/signup", seen)}  # fmt: skip
        assert browser.post("/signup", data=data).status_code == 200
        link = wait_for_link(smtp, newcomer, "/verify-email?token=", seen)
        assert browser.get(link).status_code == 200
        login = {"username": newcomer, "password": signup_password, "csrf_token": form_csrf(browser, "/login", seen)}
        assert browser.post("/login", data=login).status_code == 303
        seen.add_cookies(browser)
        data = {"current_password": signup_password, "password": changed_password,
                "csrf_token": form_csrf(browser, "/account/password", seen)}  # fmt: skip
        assert browser.post("/account/password", data=data).status_code == 200
        # A new address: the change link's token is a secret too; then the account goes.
        moved = "moved@example.com"
        data = {"email": moved, "password": changed_password, "csrf_token": form_csrf(browser, "/account/email", seen)}
        assert browser.post("/account/email", data=data).status_code == 200
        link = wait_for_link(smtp, moved, "/account/email/confirm?token=", seen)
        page = browser.get(link)
        assert page.status_code == 200
        data = {"token": link.split("token=", 1)[1], "csrf_token": csrf_from(page.text)}
        assert browser.post("/account/email/confirm", data=data).status_code == 200
        data = {"password": changed_password, "csrf_token": form_csrf(browser, "/account/delete", seen)}
        assert browser.post("/account/delete", data=data).status_code == 200


def note_webauthn(seen: Seen, name: str, payload: str) -> str:
    """A browser's WebAuthn answer: the whole JSON and each of its signed parts (base64url, so a log that escapes
    the JSON would still show them verbatim)."""
    seen.add(name, payload)
    for part, value in json.loads(payload)["response"].items():
        if part in ("clientDataJSON", "attestationObject", "authenticatorData", "signature"):
            seen.add(f"{name} {part}", value)
    return payload


def passkey_and_console_use(live: LiveIdp, seen: Seen) -> None:
    """A staff member adds a passkey (its attestation), signs in with it at /login/verify (a forged assertion, then
    the right one), and in the console registers a client and makes an admin token, then uses that token."""
    user_id = live.make_user(STAFF_EMAIL, seen.add("password", STAFF_PASSWORD), name="Sam")
    live.call(lambda idp: idp.users.set_role(user_id, "admin", True, actor="test"))
    key = SoftAuthenticator(origin=live.issuer)
    with httpx.Client(base_url=live.issuer, follow_redirects=False, timeout=10) as browser:
        assert sign_in(browser, seen, STAFF_PASSWORD, email=STAFF_EMAIL).status_code == 303
        page = browser.get("/account/security/passkeys")
        assert page.status_code == 200, page.text[:300]
        attestation = note_webauthn(seen, "attestation", key.register(creation_options_from(page.text)))
        data = {"credential": attestation, "name": "Staff phone", "csrf_token": csrf_from(page.text)}
        codes = codes_page_sync(browser, browser.post("/account/security/passkeys/add", data=data))
        assert codes.status_code == 200, codes.text[:300]
        assert [seen.add("backup code", c) for c in codes_from(codes.text)]
        seen.add_cookies(browser)
        browser.post("/logout", data={"csrf_token": form_csrf(browser, "/logout", seen)})

        console = "/admin/clients/new"
        login = sign_in(browser, seen, STAFF_PASSWORD, console, email=STAFF_EMAIL)
        assert login.headers["location"].startswith("/login/verify"), login.headers["location"]
        page = browser.get(login.headers["location"])
        # A forged answer: the right credential id, signed by another key; refused with a fresh challenge.
        forger = SoftAuthenticator(origin=live.issuer)
        forger.credential_id, forger.user_handle = key.credential_id, key.user_handle
        forged = note_webauthn(seen, "forged assertion", forger.assertion(request_options_from(page.text)))
        data = {"credential": forged, "csrf_token": csrf_from(page.text), "next": console}
        refused = browser.post("/login/verify/passkey", data=data)
        assert refused.status_code == 400, refused.text[:300]
        assertion = note_webauthn(seen, "assertion", key.assertion(request_options_from(refused.text)))
        data = {"credential": assertion, "csrf_token": csrf_from(refused.text), "next": console}
        done = browser.post("/login/verify/passkey", data=data)
        assert (done.status_code, done.headers.get("location")) == (303, console), done.text[:300]
        seen.add_cookies(browser)

        form = browser.get(console)
        assert form.status_code == 200, form.text[:300]
        csrf = seen.add("csrf token", csrf_from(form.text))
        data = {"csrf_token": csrf, "name": "Console Board", "redirect_uris": "https://jobs.example/cb"}
        created = browser.post(console, data=data)
        assert created.status_code == 200, created.text[:300]
        secret = CONSOLE_SECRET.search(created.text)
        assert secret
        seen.add("client secret", secret.group(1))
        made = browser.post("/admin/tokens", data={"csrf_token": csrf, "name": "deploy bot"})
        assert made.status_code == 200, made.text[:300]
        token = CONSOLE_TOKEN.search(made.text)
        assert token
        admin_token = seen.add("admin token", token.group(1))
    with httpx.Client(base_url=live.issuer, timeout=10, headers={"Authorization": f"Bearer {admin_token}"}) as admin:
        assert admin.get("/admin/api/users", params={"email": STAFF_EMAIL}).status_code == 200


REFUSED_TABLES = ("login_sessions", "users")


def refuse_writes(database_url: str, *, on: bool) -> None:
    """Make the database refuse new sign-in sessions and users (as a full disk or a failing primary would), or
    stop refusing. A trigger, so the failure comes from the database in the middle of the request's transaction."""
    postgres = database_url.startswith("postgresql")

    async def go() -> None:
        engine = create_async_engine(database_url)
        try:
            async with engine.begin() as conn:
                if postgres and on:
                    await conn.execute(text(
                        "CREATE OR REPLACE FUNCTION idp_test_refuse() RETURNS trigger AS $$"
                        " BEGIN RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql"
                    ))  # fmt: skip
                for table in REFUSED_TABLES:
                    name = f"idp_test_refuse_{table}"
                    if not on:
                        await conn.execute(
                            text(f"DROP TRIGGER IF EXISTS {name}" + (f" ON {table}" if postgres else ""))
                        )
                    elif postgres:
                        await conn.execute(text(
                            f"CREATE TRIGGER {name} BEFORE INSERT ON {table}"
                            " FOR EACH ROW EXECUTE FUNCTION idp_test_refuse()"
                        ))  # fmt: skip
                    else:
                        await conn.execute(text(
                            # Not RAISE(), which SQLite reports as a constraint failure: a table that is not there.
                            f"CREATE TRIGGER {name} BEFORE INSERT ON {table} BEGIN"
                            " INSERT INTO idp_test_refused_table VALUES (1); END"
                        ))  # fmt: skip
                if postgres and not on:
                    await conn.execute(text("DROP FUNCTION IF EXISTS idp_test_refuse()"))
        finally:
            await engine.dispose()

    run_sync(go)


def failing_use(live: LiveIdp, seen: Seen, admin_token: str, password: str = PASSWORD) -> None:
    """Sign-in and an operator creating a user while the database refuses to store them: 500s, nothing stored."""
    with httpx.Client(base_url=live.issuer, follow_redirects=False, timeout=10) as browser:
        assert sign_in(browser, seen, password).status_code == 500
    password = seen.add("password", "a password the database refused 9Tv")
    with httpx.Client(base_url=live.issuer, timeout=10, headers={"Authorization": f"Bearer {admin_token}"}) as admin:
        refused = admin.post("/admin/api/users", json={"email": "late@example.com", "password": password})
        assert refused.status_code == 500


async def stored_secrets(idp: Idp) -> list[str]:
    """Every value of a secret-bearing column in every table."""
    values: list[str] = []
    async with idp.db.transaction() as session:
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.columns if c.name in SECRET_COLUMNS]
            if columns:
                rows = (await session.execute(select(*columns))).all()
                values += [str(v) for row in rows for v in row if v]
    return values


def leaks(lines: list[str], secrets: dict[str, str]) -> list[str]:
    found = []
    for number, line in enumerate(lines, 1):
        for name, value in secrets.items():
            # Short secrets (six-digit codes) only as a whole word, so a request id cannot match by chance.
            hit = (
                re.search(rf"(?<![0-9A-Za-z]){re.escape(value)}(?![0-9A-Za-z])", line)
                if len(value) < 12
                else value in line
            )
            if hit:
                found.append(f"line {number}: {name}: {line[:300]}")
        for name, shape in SHAPES.items():
            if shape.search(line):
                found.append(f"line {number}: looks like a {name}: {line[:300]}")
    return found


def test_no_log_line_holds_a_secret(database_url: str, debug_logs: io.StringIO) -> None:
    seen = Seen()
    with smtp_server() as smtp:
        live = LiveIdp(database_url, smtp_url=smtp.url, signup="open", outbox_poll_seconds=0.2)
        live.start()
        try:
            _use(live, seen, smtp, database_url)
            stored = live.call(stored_secrets)
        finally:
            live.stop()
    _check(debug_logs, seen, stored)


def _use(live: LiveIdp, seen: Seen, smtp: SmtpServer, database_url: str) -> None:
    normal_use(live, seen)
    self_service_use(live, seen, smtp)
    passkey_and_console_use(live, seen)
    admin_token = next(v for k, v in seen.values.items() if k.startswith("admin token"))
    refuse_writes(database_url, on=True)
    try:
        # The person's password is the one set through the reset link by now.
        failing_use(live, seen, admin_token, next(v for k, v in seen.values.items() if k.startswith("reset password")))
    finally:
        refuse_writes(database_url, on=False)


def _check(debug_logs: io.StringIO, seen: Seen, stored: list[str]) -> None:
    lines = debug_logs.getvalue().splitlines()
    text_of_logs = "\n".join(lines)
    # The run did reach the logs it checks: debug lines, access lines, and the database failures at ERROR.
    assert '"level": "DEBUG"' in text_of_logs
    assert '"logger": "idp.access"' in text_of_logs
    # The passkey and console requests were among them (a refused and an accepted passkey answer, the console's).
    for request in ("POST /login/verify/passkey 400", "POST /login/verify/passkey 303", "POST /admin/tokens 200"):
        assert f'"message": "{request}"' in text_of_logs, request
    assert "refused" in text_of_logs, "the database failure was not logged"
    secrets = dict(seen.values)
    secrets.update({f"stored #{i}": value for i, value in enumerate(stored) if len(value) >= 12})
    assert len(secrets) > 40
    found = leaks(lines, secrets)
    assert not found, "secrets in the logs:\n" + "\n".join(found[:20])


class ProxyThread:
    """A TcpProxy to PostgreSQL on an event loop of its own, so that a synchronous test can cut the database away."""

    def __init__(self) -> None:
        server = make_url(PG_SERVER)
        self.proxy = TcpProxy(server.host or "127.0.0.1", server.port or 5432)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="pg-proxy", daemon=True)

    def start(self) -> None:
        self.thread.start()
        self._run(self.proxy.start())

    def through(self, url: str) -> str:
        return make_url(url).set(host="127.0.0.1", port=self.proxy.port).render_as_string(hide_password=False)

    def cut(self) -> None:
        self._run(self.proxy.stop())

    def close(self) -> None:
        self._run(asyncio.sleep(0.1))  # let the cut connections' tasks finish
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)


def test_no_log_line_holds_a_secret_while_the_database_is_away(postgres_database: str, debug_logs: io.StringIO) -> None:
    truncate_pg(postgres_database)
    proxy = ProxyThread()
    proxy.start()
    seen = Seen()
    live = LiveIdp(proxy.through(postgres_database))
    try:
        live.start()
        live.make_user()
        seen.add("password", PASSWORD)
        client_id, client_secret = live.make_client()
        seen.add("client secret", client_secret)
        _, admin_token = live.call(lambda idp: idp.admin_tokens.create("ops"))
        seen.add("admin token", admin_token)
        with httpx.Client(base_url=live.issuer, follow_redirects=False, timeout=30) as browser:
            token = form_csrf(browser, "/login", seen)
            assert sign_in(browser, seen, PASSWORD).status_code == 303
            seen.add_cookies(browser)

            cookies = browser.cookies
        proxy.cut()  # every pooled connection is cut and no new one can be made

        # A fresh connection each time: uvicorn closes one after a request failed with an exception.
        with httpx.Client(base_url=live.issuer, cookies=cookies, timeout=30) as browser:
            again = browser.post("/login", data={"username": EMAIL, "password": PASSWORD, "csrf_token": token})
            assert again.status_code >= 500
        with httpx.Client(base_url=live.issuer, cookies=cookies, timeout=30) as browser:
            assert browser.get("/account").status_code >= 500
        with httpx.Client(base_url=live.issuer, timeout=30) as rp:
            grant = {"grant_type": "client_credentials"}
            assert rp.post("/token", data=grant, auth=(client_id, client_secret)).status_code >= 500
        with httpx.Client(base_url=live.issuer, timeout=30, headers={"Authorization": f"Bearer {admin_token}"}) as op:
            assert op.get("/admin/api/users").status_code >= 500
    finally:
        live.stop()
        proxy.close()

    lines = debug_logs.getvalue().splitlines()
    assert any('"level": "ERROR"' in line for line in lines), "the outage was not logged"
    found = leaks(lines, seen.values)
    assert not found, "secrets in the logs:\n" + "\n".join(found[:20])
