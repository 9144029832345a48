"""Password sign-in at /login: success, the generic failure, continuation, session renewal and expiry, sign-out."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from idp.clock import FrozenClock
from idp.store.models import AuditEvent, LoginSession
from tests.conftest import Running
from tests.support.pages import PASSWORD, csrf_token, make_user, submit_login

GENERIC = "The email or password is incorrect."


async def count(running: Running, model: type) -> int:
    async with running.idp.db.transaction() as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar_one()


async def test_sign_in_page_has_the_interface_fields(client: httpx.AsyncClient) -> None:
    response = await client.get("/login")
    assert response.status_code == 200
    assert 'name="username"' in response.text
    assert 'name="password"' in response.text
    assert 'name="csrf_token"' in response.text
    assert response.headers["content-type"].startswith("text/html")


async def test_correct_password_signs_in_and_shows_account(running: Running, client: httpx.AsyncClient) -> None:
    await make_user(running.idp, "Ada@Example.com", name="Ada Lovelace")

    response = await submit_login(client, "ada@example.COM", PASSWORD)

    assert response.status_code == 303
    assert response.headers["location"] == "/account"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("idp_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie or "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # the issuer is http here
    account = await client.get("/account")
    assert account.status_code == 200
    assert "Ada@Example.com" in account.text
    assert "Ada Lovelace" in account.text


async def test_session_records_auth_time_and_password_method(running: Running, client: httpx.AsyncClient) -> None:
    await make_user(running.idp)
    await submit_login(client, "person@example.com", PASSWORD)
    async with running.idp.db.transaction() as session:
        row = (await session.execute(select(LoginSession))).scalar_one()
    assert row.methods == "pwd"
    assert row.auth_time == running.idp.clock.now()
    # Only a hash of the cookie is stored.
    assert client.cookies["idp_session"] not in (row.id_hash,)
    assert len(row.id_hash) == 64


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("person@example.com", "wrong password here"),
        ("nobody@example.com", PASSWORD),
        ("nobody@example.com", "wrong password here"),
    ],
)
async def test_any_failure_gives_the_same_generic_answer(
    running: Running, client: httpx.AsyncClient, email: str, password: str
) -> None:
    await make_user(running.idp)

    response = await submit_login(client, email, password)

    assert response.status_code == 400
    assert GENERIC in response.text
    assert "idp_session" not in response.headers.get("set-cookie", "")
    assert await count(running, LoginSession) == 0


async def test_disabled_account_cannot_sign_in(running: Running, client: httpx.AsyncClient) -> None:
    user = await make_user(running.idp)
    async with running.idp.db.transaction() as session:
        (await session.get(type(user), user.id)).disabled = True  # type: ignore[union-attr]

    response = await submit_login(client, "person@example.com", PASSWORD)

    assert response.status_code == 400
    assert GENERIC in response.text


async def test_failure_is_audited_without_the_password(running: Running, client: httpx.AsyncClient) -> None:
    await make_user(running.idp)
    await submit_login(client, "person@example.com", "Tr0ub4dor&3-wrong")
    async with running.idp.db.transaction() as session:
        events = (await session.execute(select(AuditEvent))).scalars().all()
    assert [(e.type, e.outcome) for e in events] == [("login.failure", "failure")]
    assert events[0].client_ip == "198.51.100.7"
    assert "Tr0ub4dor" not in events[0].details


async def test_next_inside_idp_is_followed(running: Running, client: httpx.AsyncClient) -> None:
    await make_user(running.idp)
    response = await submit_login(client, "person@example.com", PASSWORD, next_url="/account?tab=1")
    assert response.headers["location"] == "/account?tab=1"


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/path",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "/%0d%0aSet-Cookie:x=1",
        "/\t/evil.example",
        "http:/evil.example",
    ],
)
async def test_next_off_site_is_never_followed(running: Running, client: httpx.AsyncClient, target: str) -> None:
    await make_user(running.idp)
    response = await submit_login(client, "person@example.com", PASSWORD, next_url=target)
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/")
    assert not location.startswith("//")
    assert "evil" not in location or location == target
    assert "\\" not in location


async def test_signed_in_visitor_skips_the_form(running: Running, client: httpx.AsyncClient) -> None:
    await make_user(running.idp)
    await submit_login(client, "person@example.com", PASSWORD)
    response = await client.get("/login", params={"next": "https://evil.example/"})
    assert response.status_code == 303
    assert response.headers["location"] == "/account"


async def test_session_id_is_renewed_at_sign_in(running: Running, client: httpx.AsyncClient) -> None:
    await make_user(running.idp)
    await submit_login(client, "person@example.com", PASSWORD)
    first = client.cookies["idp_session"]

    # Signing in again (another account or the same) never keeps the old id.
    response = await submit_login(client, "person@example.com", PASSWORD, form_page="/logout")
    second = client.cookies["idp_session"]

    assert response.status_code == 303
    assert first != second
    assert await count(running, LoginSession) == 1
    async with running.client() as other:
        other.cookies.set("idp_session", first, domain="testserver.local")
        assert (await other.get("/account")).status_code == 303


async def test_planted_session_cookie_is_replaced(running: Running, client: httpx.AsyncClient) -> None:
    await make_user(running.idp)
    client.cookies.set("idp_session", "attacker-chosen-value", domain="testserver.local")
    response = await submit_login(client, "person@example.com", PASSWORD)
    assert response.status_code == 303
    assert client.cookies.get("idp_session", domain="testserver.local") != "attacker-chosen-value"


async def test_idle_session_expires(running: Running, client: httpx.AsyncClient, clock: FrozenClock) -> None:
    await make_user(running.idp)
    await submit_login(client, "person@example.com", PASSWORD)
    idle = running.idp.settings.session_idle_seconds

    clock.advance(idle - 120)
    assert (await client.get("/account")).status_code == 200  # activity keeps it alive
    clock.advance(idle - 120)
    assert (await client.get("/account")).status_code == 200
    clock.advance(idle + 1)
    response = await client.get("/account")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")
    assert await count(running, LoginSession) == 0


async def test_absolute_lifetime_ends_even_an_active_session(
    running: Running, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await make_user(running.idp)
    await submit_login(client, "person@example.com", PASSWORD)
    settings = running.idp.settings
    elapsed = 0
    while elapsed + settings.session_idle_seconds // 2 < settings.session_absolute_seconds:
        clock.advance(settings.session_idle_seconds // 2)
        elapsed += settings.session_idle_seconds // 2
        assert (await client.get("/account")).status_code == 200
    clock.advance(settings.session_absolute_seconds - elapsed)
    assert (await client.get("/account")).status_code == 303


async def test_forged_session_cookie_is_anonymous(client: httpx.AsyncClient) -> None:
    for forged in ["x", "A" * 43, "A" * 5000, "'; DROP TABLE users; --"]:
        client.cookies.set("idp_session", forged, domain="testserver.local")
        response = await client.get("/account")
        assert response.status_code == 303
        assert response.headers["location"] == "/login?next=%2Faccount"


async def test_anonymous_account_visit_goes_to_login(client: httpx.AsyncClient) -> None:
    response = await client.get("/account")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Faccount"


async def test_sign_out_ends_the_session(running: Running, client: httpx.AsyncClient) -> None:
    await make_user(running.idp)
    await submit_login(client, "person@example.com", PASSWORD)
    cookie = client.cookies["idp_session"]

    page = await client.get("/logout")
    assert "Sign out" in page.text
    response = await client.post("/logout", data={"csrf_token": await csrf_token(client, "/logout")})

    assert response.status_code == 200
    assert 'idp_session=""' in response.headers["set-cookie"] or "Max-Age=0" in response.headers["set-cookie"]
    assert await count(running, LoginSession) == 0
    async with running.client() as other:
        other.cookies.set("idp_session", cookie, domain="testserver.local")
        assert (await other.get("/account")).status_code == 303


async def test_secure_cookies_when_issuer_is_https(start_app, make_settings) -> None:  # type: ignore[no-untyped-def]
    running = await start_app(make_settings(issuer="https://login.example.com"))
    await make_user(running.idp)
    async with running.client(base_url="https://login.example.com") as client:
        response = await submit_login(client, "person@example.com", PASSWORD)
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("__Host-idp_session=")
    assert "Secure" in cookie
    assert "HttpOnly" in cookie
    assert response.headers["strict-transport-security"].startswith("max-age=")
