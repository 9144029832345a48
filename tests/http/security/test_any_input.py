"""Any bytes or text in any field of any endpoint: never a 5xx, and nothing written (INTERFACE §6).

Every route of the app must be in the tables below (a new endpoint fails `test_every_route_is_fuzzed` until it
is added). Each form and query endpoint gets arbitrary values, percent-encoded bytes that are not UTF-8, raw
bytes, repeated and unknown fields and odd content types, with and without a valid CSRF token, from a signed-in
browser; the admin API gets arbitrary JSON and queries with a valid token. The database is compared before and
after every request (row counts, and a checksum of every table but the ones that record refusals by design).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_from_bytes

import httpx
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Mount, Route

import idp.admin.audit
import idp.admin.clients
import idp.admin.keys
import idp.admin.users  # noqa: F401  (importing them registers the operations)
from idp.account import delete as delete_page
from idp.account import email as email_page
from idp.account import login as login_page
from idp.account import passkeys, password, second_step, security, sessions, signup
from idp.admin import api as admin_api
from idp.app import create_app
from idp.clock import FrozenClock
from idp.config import Settings
from idp.console import operators as console_operators
from idp.console import people as console_people
from idp.oidc import authorize, client_auth, end_session, token
from idp.ops.listeners import Listener
from tests.conftest import FAST_ARGON2, TABLES, Running, truncate_pg
from tests.support.admin import admin_client, dump_tables
from tests.support.oidc import REDIRECT_URI, make_client
from tests.support.pages import PASSWORD, csrf_token, make_user, submit_login

FORM = "application/x-www-form-urlencoded"
PAGE_QUERY = ("next", "reauth", "login_hint", "ui_locales", "lang", "done")

# (method, path) -> the fields the endpoint reads. Query fields for GET, form fields for POST.
ENDPOINTS: dict[tuple[str, str], tuple[str, ...]] = {
    ("GET", "/"): (),
    ("GET", "/login"): PAGE_QUERY,
    ("POST", "/login"): tuple(login_page.LOGIN_FIELDS),
    ("GET", "/logout"): (),
    ("POST", "/logout"): ("csrf_token",),
    ("GET", "/login/verify"): PAGE_QUERY,
    ("POST", "/login/verify"): tuple(second_step.FIELDS),
    ("GET", "/login/recovery"): PAGE_QUERY,
    ("POST", "/login/recovery"): tuple(second_step.FIELDS),
    ("POST", "/login/verify/passkey"): tuple(second_step.PASSKEY_FIELDS),
    ("POST", "/login/passkey"): tuple(passkeys.SIGNIN_FIELDS),
    ("GET", "/password/forgot"): PAGE_QUERY,
    ("POST", "/password/forgot"): tuple(password.FORGOT_FIELDS),
    ("GET", "/password/reset"): (*PAGE_QUERY, "token"),
    ("POST", "/password/reset"): tuple(password.RESET_FIELDS),
    ("GET", "/signup"): PAGE_QUERY,
    ("POST", "/signup"): tuple(signup.SIGNUP_FIELDS),
    ("GET", "/signup/resend"): PAGE_QUERY,
    ("POST", "/signup/resend"): tuple(signup.RESEND_FIELDS),
    ("GET", "/verify-email"): (*PAGE_QUERY, "token"),
    ("GET", "/account"): PAGE_QUERY,
    ("GET", "/account/password"): PAGE_QUERY,
    ("POST", "/account/password"): tuple(password.CHANGE_FIELDS),
    ("GET", "/account/email"): PAGE_QUERY,
    ("POST", "/account/email"): tuple(email_page.FIELDS),
    ("GET", "/account/email/confirm"): (*PAGE_QUERY, "token"),
    ("POST", "/account/email/confirm"): tuple(email_page.CONFIRM_FIELDS),
    ("GET", "/account/delete"): PAGE_QUERY,
    ("POST", "/account/delete"): tuple(delete_page.FIELDS),
    ("GET", "/account/export"): PAGE_QUERY,
    ("GET", "/account/security"): (*PAGE_QUERY, "client_id", "return_to"),
    ("GET", "/account/security/totp"): PAGE_QUERY,
    ("POST", "/account/security/totp"): tuple(security.FIELDS),
    ("POST", "/account/security/disable"): tuple(security.FIELDS),
    ("POST", "/account/security/backup-codes"): tuple(security.FIELDS),
    ("GET", "/account/security/backup-codes"): PAGE_QUERY,
    ("POST", "/account/security/backup-codes/saved"): tuple(security.SAVED_FIELDS),
    ("GET", "/account/security/backup-codes/download"): PAGE_QUERY,
    ("GET", "/account/security/backup-codes/print"): PAGE_QUERY,
    ("GET", "/account/security/passkeys"): PAGE_QUERY,
    ("POST", "/account/security/passkeys/add"): tuple(passkeys.ADD_FIELDS),
    ("POST", "/account/security/passkeys/rename"): tuple(passkeys.RENAME_FIELDS),
    ("POST", "/account/security/passkeys/remove"): tuple(passkeys.REMOVE_FIELDS),
    ("GET", "/account/sessions"): PAGE_QUERY,
    ("POST", "/account/sessions/sign-out"): tuple(sessions.FIELDS),
    ("POST", "/account/sessions/sign-out-others"): tuple(sessions.FIELDS),
    ("GET", "/.well-known/openid-configuration"): (),
    ("GET", "/jwks"): (),
    ("GET", "/authorize"): tuple(authorize.LIMITS),
    ("POST", "/authorize"): tuple(authorize.LIMITS),
    ("POST", "/authorize/consent"): (*authorize.LIMITS, "csrf_token", "decision"),
    ("POST", "/authorize/cancel"): ("csrf_token", "next"),
    ("GET", "/brand/logo"): (),
    ("GET", "/brand/theme.css"): (),
    ("POST", "/token"): tuple(token.FIELDS),
    ("GET", "/userinfo"): ("access_token",),
    ("POST", "/userinfo"): ("access_token",),
    ("POST", "/introspect"): tuple(client_auth.TOKEN_FIELDS),
    ("POST", "/revoke"): tuple(client_auth.TOKEN_FIELDS),
    ("GET", "/end_session"): tuple(end_session.LIMITS),
    ("POST", "/end_session"): tuple(end_session.LIMITS),
    ("POST", "/end_session/confirm"): (*end_session.LIMITS, "csrf_token"),
    ("GET", "/healthz"): (),
    ("GET", "/readyz"): (),
    ("GET", "/metrics"): (),
    # The support console: the fuzzing browser holds no role, so every request is refused before it acts.
    ("GET", "/admin"): (*PAGE_QUERY, *console_people.SEARCH_QUERY),
    ("GET", "/admin/users/{user_id}"): PAGE_QUERY,
    ("GET", "/admin/users/{user_id}/reset-mfa"): PAGE_QUERY,
    ("POST", "/admin/users/{user_id}/reset-mfa"): ("reason",),
    ("POST", "/admin/users/{user_id}/unlock"): (),
    ("POST", "/admin/users/{user_id}/password-reset"): (),
    ("POST", "/admin/users/{user_id}/sessions/revoke"): (),
    ("POST", "/admin/users/{user_id}/disable"): (),
    ("POST", "/admin/users/{user_id}/enable"): (),
    ("GET", "/admin/clients"): (*PAGE_QUERY, "after"),
    ("GET", "/admin/clients/new"): PAGE_QUERY,
    ("POST", "/admin/clients/new"): tuple(console_operators.CLIENT_FIELDS),
    ("GET", "/admin/clients/{client_id}"): PAGE_QUERY,
    ("POST", "/admin/clients/{client_id}"): tuple(console_operators.CLIENT_FIELDS),
    ("POST", "/admin/clients/{client_id}/secret"): (),
    ("GET", "/admin/keys"): PAGE_QUERY,
    ("POST", "/admin/keys/rotate"): (),
    ("POST", "/admin/keys/{kid}/retire"): (),
    ("GET", "/admin/tokens"): PAGE_QUERY,
    ("POST", "/admin/tokens"): tuple(console_operators.TOKEN_FIELDS),
    ("POST", "/admin/tokens/{token_id}/revoke"): (),
    ("GET", "/admin/audit"): (*PAGE_QUERY, *console_operators.AUDIT_QUERY),
}
# A valid CSRF token and nothing else is a complete request here (sign out): they get only wrong tokens.
ACTS_ON_CSRF_ALONE = {("POST", "/logout"), ("POST", "/end_session/confirm")}
# Admin operations that act on the bearer token alone (rotate keys): they always get an unexpected query.
ACTS_ON_TOKEN_ALONE = {("POST", "/keys/rotate")}
ADMIN = {(op.method, admin_api.PREFIX + op.path): op for op in admin_api.OPERATIONS}
ADMIN_EXTRA = {admin_api.PREFIX + "/openapi.json", admin_api.PREFIX + "/{rest:path}"}
# Tables that record refusals by design (failed attempts, the audit of failures, an admin token's last use) are
# left out; sessions are counted only (each use moves last_seen_at); every other table must be byte-for-byte the
# same after a refused request.
RECORDS_REFUSALS = {"ratelimit_hits", "audit_events", "admin_tokens"}
COUNTED_ONLY = {"login_sessions"}

SECRETS = {"secret_key": "s" * 40, "encryption_key": "e" * 40}
SETTINGS = settings(
    max_examples=30,  # ~1 s per endpoint: the whole module stays under a minute per database on 2 cores
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# -- what the fuzzer sends ------------------------------------------------------------------------------------

odd_text = st.sampled_from(
    ["", "\x00", "é", "\u0130" * 200, "%", "%zz", "+", "&", "=", "a" * 5000, "\ufeff", "\u202e", "[" * 300, "null"]
)
values = st.one_of(
    st.text(max_size=60).map(str.encode),
    st.binary(max_size=60),  # percent-encoded: often not UTF-8
    st.text(st.characters(codec="utf-16", categories=("Cs", "Cc", "Cf", "Zs", "Lu", "Nd")), max_size=20).map(
        lambda s: s.encode("utf-8", "surrogatepass")
    ),
    odd_text.map(str.encode),
)
content_types = st.sampled_from([FORM, FORM, FORM, FORM + "; charset=latin-1", "application/json", "text/plain", ""])


@dataclass
class World:
    running: Running
    browser: httpx.AsyncClient
    admin: httpx.AsyncClient
    csrf: str
    client_id: str
    state: dict[str, Any] = field(default_factory=dict)  # the database as the fixture left it


@st.composite
def form_pairs(draw: st.DrawFn, fields: tuple[str, ...], known: dict[str, str]) -> list[tuple[bytes, bytes]]:
    names = st.sampled_from([*fields, "csrf_token", "x"]) if fields else st.sampled_from(["csrf_token", "x"])
    pairs = draw(st.lists(st.tuples(st.one_of(names, st.text(max_size=8)), values), max_size=8))
    result = [(n.encode(), v) for n, v in pairs]
    # Sometimes a real value (the registered client), so the checks after parsing run as well.
    if fields and draw(st.booleans()):
        name = draw(st.sampled_from(fields))
        if name in known:
            result.append((name.encode(), known[name].encode()))
    return result


def encode(pairs: list[tuple[bytes, bytes]], raw: bool) -> bytes:
    if raw:  # not percent-encoded at all
        return b"&".join(n + b"=" + v for n, v in pairs)
    return "&".join(f"{quote_from_bytes(n, safe='')}={quote_from_bytes(v, safe='')}" for n, v in pairs).encode()


async def snapshot(running: Running) -> dict[str, Any]:
    """Every row of every table but those in RECORDS_REFUSALS; of COUNTED_ONLY tables, how many rows."""
    tables: dict[str, Any] = await dump_tables(running, skip=(*RECORDS_REFUSALS, *COUNTED_ONLY))
    for name in COUNTED_ONLY:
        tables[name] = len((await dump_tables(running, skip=tuple(set(TABLES) - {name})))[name])
    return tables


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated, empty database of each kind, for the whole module."""
    if request.param == "sqlite":
        target = tmp_path_factory.mktemp("fuzz") / "idp.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), target)
        return f"sqlite+aiosqlite:///{target}"
    url: str = request.getfixturevalue("postgres_database")
    truncate_pg(url)
    return url


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(module_database_url: str) -> AsyncIterator[World]:
    """One app per database for the whole module (its state must not change anyway): a signed-in browser, an
    operator with a token, a registered client."""
    url = module_database_url
    settings = Settings(_env_file=None, database_url=url, issuer="http://testserver", **SECRETS, **FAST_ARGON2)  # type: ignore[arg-type]
    app = create_app(settings, clock=FrozenClock())
    async with app.router.lifespan_context(app):
        running = Running(app)
        await make_user(running.idp)
        rp = await make_client(running.idp)
        async with running.client() as browser, await admin_client(running) as admin:
            assert (await submit_login(browser, "person@example.com", PASSWORD)).status_code == 303
            # The enrollment page keeps a pending secret for this session, written on its first showing by design.
            assert (await browser.get("/account/security/totp")).status_code == 200
            # So does the passkeys page its registration challenge (kept while it has half its life ahead).
            assert (await browser.get("/account/security/passkeys")).status_code == 200
            world = World(running, browser, admin, await csrf_token(browser, "/login?reauth=1"), rp.client_id)
            world.state = await snapshot(running)
            yield world


# -- the tests --------------------------------------------------------------------------------------------------


def test_every_route_is_fuzzed(tmp_path: Any) -> None:
    """A new endpoint fails here until it is in ENDPOINTS (or is an admin operation, which is covered by itself)."""
    app = create_app(
        Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db", secret_key="s" * 40)  # type: ignore[call-arg]
    )
    missing = []
    # The public and management listeners each hold routes of their own: walk both.
    routes = [inner for route in app.routes for inner in (route.routes if isinstance(route, Listener) else [route])]
    for route in routes:
        if isinstance(route, Mount):
            continue
        assert isinstance(route, Route)
        if route.path.startswith(admin_api.PREFIX):
            if route.path not in ADMIN_EXTRA and not any(path == route.path for _, path in ADMIN):
                missing.append(route.path)
            continue
        for method in route.methods or ():
            if method != "HEAD" and (method, route.path) not in ENDPOINTS:
                missing.append(f"{method} {route.path}")
    assert not missing, f"add these routes to ENDPOINTS in {__name__}: {missing}"


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(("method", "path"), sorted(ENDPOINTS), ids=[f"{m} {p}" for m, p in sorted(ENDPOINTS)])
@SETTINGS
@given(data=st.data())
async def test_pages_and_oidc_endpoints(world: World, method: str, path: str, data: st.DataObject) -> None:
    fields = ENDPOINTS[(method, path)]
    known = {"client_id": world.client_id, "redirect_uri": REDIRECT_URI, "csrf_token": world.csrf}
    pairs = data.draw(form_pairs(fields, known), "pairs")
    csrf = data.draw(st.sampled_from(["valid", "any", "none"]), "csrf")
    if (method, path) in ACTS_ON_CSRF_ALONE:
        pairs = [(n, v) for n, v in pairs if n != b"csrf_token"]
        csrf = "none" if csrf == "none" else "any"
    if csrf == "valid":
        pairs = [(b"csrf_token", world.csrf.encode()), *pairs]
    elif csrf == "any":
        pairs = [(b"csrf_token", data.draw(values, "csrf_token")), *pairs]
    # A URL cannot carry raw bytes through httpx: queries are always percent-encoded, bodies sometimes not.
    body = encode(pairs, raw=method != "GET" and data.draw(st.booleans(), "raw"))
    if method == "GET":
        response = await world.browser.request("GET", path + "?" + body.decode())
    else:
        headers = {"content-type": data.draw(content_types, "content type")}
        response = await world.browser.request(method, path, content=body, headers=headers)
    assert response.status_code < 500, (method, path, body[:300], response.status_code)
    assert await snapshot(world.running) == world.state, (method, path, body[:300], response.status_code)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


@st.composite
def admin_bodies(draw: st.DrawFn, fields: tuple[str, ...]) -> bytes:
    kind = draw(st.sampled_from(["object", "object", "any", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=80))
    if kind == "any":
        return json.dumps(draw(json_values)).encode()
    keys = st.sampled_from(fields) if fields else st.text(max_size=10)
    body = draw(st.dictionaries(st.one_of(keys, st.text(max_size=10)), json_values, max_size=5))
    return json.dumps(body).encode()


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(
    ("method", "path"), sorted(ADMIN), ids=[f"{m} {p.removeprefix(admin_api.PREFIX)}" for m, p in sorted(ADMIN)]
)
@SETTINGS
@given(data=st.data())
async def test_admin_api(world: World, method: str, path: str, data: st.DataObject) -> None:
    op = ADMIN[(method, path)]
    body_fields = tuple(op.body.model_fields) if op.body else ()
    query_fields = tuple(op.query.model_fields) if op.query else ("x",)
    url = path
    for name in ("user_id", "client_id", "kid"):
        if "{" + name + "}" in url:
            url = url.replace("{" + name + "}", quote(data.draw(st.text(min_size=1, max_size=40), name), safe=""))
    names = st.one_of(st.sampled_from(query_fields), st.text(max_size=6))
    query = data.draw(st.lists(st.tuples(names, values), max_size=4), "query")
    if (method, path.removeprefix(admin_api.PREFIX)) in ACTS_ON_TOKEN_ALONE:
        query = [*query, ("unexpected", b"1")]
    if query:
        url += "?" + encode([(n.encode(), v) for n, v in query], raw=False).decode()
    body = data.draw(admin_bodies(body_fields), "body")
    content_type = data.draw(st.sampled_from(["application/json", "application/json", "text/plain", FORM]))
    response = await world.admin.request(method, url, content=body, headers={"content-type": content_type})
    assert response.status_code < 500, (method, url[:300], body[:300], response.status_code)
    assert await snapshot(world.running) == world.state, (method, url[:300], body[:300], response.status_code)
