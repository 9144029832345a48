"""Malformed sign-in forms (empty, huge, non-UTF-8, repeated, SQL-looking, wrong type): 4xx, never 500, no writes."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import select

from idp.store.models import User
from tests.conftest import Running
from tests.support.pages import PASSWORD, csrf_token, make_user, submit_login
from tests.support.rows import row_counts

GENERIC = "The email or password is incorrect."
FORM = "application/x-www-form-urlencoded"


async def post_raw(client: httpx.AsyncClient, body: bytes | str, content_type: str = FORM) -> httpx.Response:
    return await client.post("/login", content=body, headers={"content-type": content_type})


@pytest.mark.parametrize(
    ("username", "password"),
    [("", PASSWORD), ("person@example.com", ""), ("", ""), ("   ", PASSWORD)],
)
async def test_empty_fields_get_the_generic_message(
    running: Running, client: httpx.AsyncClient, username: str, password: str
) -> None:
    await make_user(running.idp)
    token = await csrf_token(client)
    before = await row_counts(running)

    response = await client.post("/login", data={"username": username, "password": password, "csrf_token": token})

    assert response.status_code == 400
    assert GENERIC in response.text
    assert await row_counts(running) == before


@pytest.mark.parametrize("field", ["username", "password", "csrf_token", "next", "unrelated"])
async def test_a_one_megabyte_field_is_refused_unread(running: Running, client: httpx.AsyncClient, field: str) -> None:
    await make_user(running.idp)
    token = await csrf_token(client)
    before = await row_counts(running)
    data = {"username": "person@example.com", "password": PASSWORD, "csrf_token": token}
    data[field] = "a" * (1024 * 1024)

    response = await client.post("/login", data=data)

    assert response.status_code == 413
    assert response.headers["x-frame-options"] == "DENY"
    assert await row_counts(running) == before


async def test_a_one_megabyte_body_without_a_length_is_refused(running: Running, client: httpx.AsyncClient) -> None:
    token = await csrf_token(client)
    before = await row_counts(running)

    async def chunks():  # type: ignore[no-untyped-def]
        yield f"csrf_token={token}&username=person%40example.com&password=".encode()
        for _ in range(64):
            yield b"a" * 16384

    response = await client.post("/login", content=chunks(), headers={"content-type": FORM})

    assert response.status_code == 413
    assert await row_counts(running) == before


@pytest.mark.parametrize(
    "template",
    [
        "username=%ff%fe&password=x&csrf_token={token}",
        "username=person%40example.com&password=%c3%28&csrf_token={token}",
        "username=%ed%a0%80@example.com&password=x&csrf_token={token}",
        "username=person%40example.com&password=x%00y&csrf_token={token}",
    ],
)
async def test_bytes_that_are_not_utf8_are_a_400(running: Running, client: httpx.AsyncClient, template: str) -> None:
    await make_user(running.idp)
    token = await csrf_token(client)
    before = await row_counts(running)

    response = await post_raw(client, template.format(token=token))

    assert response.status_code == 400
    assert await row_counts(running) == before


async def test_raw_non_ascii_bytes_in_the_body_are_a_400(running: Running, client: httpx.AsyncClient) -> None:
    token = await csrf_token(client)
    before = await row_counts(running)

    response = await post_raw(client, b"username=\xff\xfe&password=x&csrf_token=" + token.encode())

    assert response.status_code == 400
    assert await row_counts(running) == before


@pytest.mark.parametrize("field", ["username", "password", "csrf_token", "next"])
async def test_a_repeated_field_is_a_400(running: Running, client: httpx.AsyncClient, field: str) -> None:
    await make_user(running.idp)
    token = await csrf_token(client)
    before = await row_counts(running)
    pairs = [("username", "person@example.com"), ("password", PASSWORD), ("csrf_token", token), ("next", "/account")]
    pairs.append((field, dict(pairs)[field]))

    response = await post_raw(client, "&".join(f"{k}={quote(v, safe='')}" for k, v in pairs))

    assert response.status_code == 400
    assert "idp_session" not in response.headers.get("set-cookie", "")
    assert await row_counts(running) == before


async def test_many_fields_are_a_400(running: Running, client: httpx.AsyncClient) -> None:
    token = await csrf_token(client)
    before = await row_counts(running)
    body = f"username=a%40example.com&password=x&csrf_token={token}&" + "&".join(f"f{i}=1" for i in range(1000))

    response = await post_raw(client, body)

    assert response.status_code == 400
    assert await row_counts(running) == before


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("' OR 1=1 --", "' OR 1=1 --"),
        ("person@example.com' OR '1'='1", "x"),
        ("person@example.com", "' OR 1=1 --"),
        ("x@example.com'; DROP TABLE users; --", "'); DELETE FROM users; --"),
        ('" OR ""="', '" OR ""="'),
    ],
)
async def test_sql_looking_input_is_just_a_wrong_password(
    running: Running, client: httpx.AsyncClient, username: str, password: str
) -> None:
    user = await make_user(running.idp)

    response = await submit_login(client, username, password)

    assert response.status_code == 400
    assert GENERIC in response.text
    assert "idp_session" not in response.headers.get("set-cookie", "")
    counts = await row_counts(running)
    assert counts["users"] == 1
    assert counts["login_sessions"] == 0
    # A failure is counted and audited as one unit: both rows or neither.
    assert counts["audit_events"] == 1
    assert counts["ratelimit_hits"] == 2
    async with running.idp.db.transaction() as session:
        stored = (await session.execute(select(User))).scalar_one()
    assert (stored.id, stored.email, stored.password_hash) == (user.id, user.email, user.password_hash)
    assert (await submit_login(client, "person@example.com", PASSWORD)).status_code == 303


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "text/plain", "multipart/form-data; boundary=x", "application/xml", ""],
)
async def test_a_wrong_content_type_is_a_415(running: Running, client: httpx.AsyncClient, content_type: str) -> None:
    await make_user(running.idp)
    token = await csrf_token(client)
    before = await row_counts(running)
    body = f"username=person%40example.com&password={quote(PASSWORD)}&csrf_token={token}"
    headers = {"content-type": content_type} if content_type else {}

    response = await client.post("/login", content=body, headers=headers)

    assert response.status_code == 415
    assert await row_counts(running) == before


async def test_json_body_is_a_415(running: Running, client: httpx.AsyncClient) -> None:
    await make_user(running.idp)
    token = await csrf_token(client)
    before = await row_counts(running)

    response = await client.post(
        "/login", json={"username": "person@example.com", "password": PASSWORD, "csrf_token": token}
    )

    assert response.status_code == 415
    assert await row_counts(running) == before


async def test_charset_parameter_on_the_form_type_is_accepted(running: Running, client: httpx.AsyncClient) -> None:
    await make_user(running.idp)
    token = await csrf_token(client)
    body = f"username=person%40example.com&password={quote(PASSWORD)}&csrf_token={token}"

    response = await post_raw(client, body, "application/x-www-form-urlencoded; charset=UTF-8")

    assert response.status_code == 303


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/", "//evil.example", "/\\evil.example", "javascript:alert(1)", "http:evil.example"],
)
async def test_off_site_next_is_ignored(running: Running, client: httpx.AsyncClient, target: str) -> None:
    await make_user(running.idp)

    response = await submit_login(client, "person@example.com", PASSWORD, next_url=target)

    assert response.status_code == 303
    assert response.headers["location"] == "/account"
    counts = await row_counts(running)
    assert counts["login_sessions"] == 1


async def test_off_site_next_on_the_form_page_is_not_rendered(client: httpx.AsyncClient) -> None:
    page = await client.get("/login", params={"next": "https://evil.example/"})
    assert page.status_code == 200
    assert "evil.example" not in page.text
    assert 'name="next" value="/account"' in page.text


async def test_markup_in_the_email_is_escaped(running: Running, client: httpx.AsyncClient) -> None:
    response = await submit_login(client, '"><img src=x>@example.com', "wrong password")
    assert response.status_code == 400
    assert "<img src=x>" not in response.text
    assert "&lt;img src=x&gt;" in response.text or "&#34;&gt;&lt;img" in response.text
