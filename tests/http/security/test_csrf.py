"""CSRF on POST /login and POST /logout: a missing, wrong or other browser's token is 403 and writes nothing."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Running
from tests.support.pages import PASSWORD, csrf_token, make_user, submit_login
from tests.support.rows import row_counts

EXPIRED = "Your form has expired"
FORM = "application/x-www-form-urlencoded"


def login_data(token: str | None) -> dict[str, str]:
    data = {"username": "person@example.com", "password": PASSWORD}
    if token is not None:
        data["csrf_token"] = token
    return data


async def token_of_another_browser(running: Running) -> str:
    async with running.client(ip="203.0.113.9") as other:
        return await csrf_token(other)


async def test_login_without_a_token_is_refused(running: Running, client: httpx.AsyncClient) -> None:
    await make_user(running.idp)
    await client.get("/login")  # the browser has its CSRF cookie, the form just lacks the field
    before = await row_counts(running)

    response = await client.post("/login", data=login_data(None))

    assert response.status_code == 403
    assert EXPIRED in response.text
    assert "idp_session" not in response.headers.get("set-cookie", "")
    assert await row_counts(running) == before


@pytest.mark.parametrize("token", ["", "0" * 64, "not-a-token", "f" * 128])
async def test_login_with_a_wrong_token_is_refused(running: Running, client: httpx.AsyncClient, token: str) -> None:
    await make_user(running.idp)
    await client.get("/login")
    before = await row_counts(running)

    response = await client.post("/login", data=login_data(token))

    assert response.status_code == 403
    assert "idp_session" not in response.headers.get("set-cookie", "")
    assert await row_counts(running) == before


async def test_login_with_another_browsers_token_is_refused(running: Running, client: httpx.AsyncClient) -> None:
    await make_user(running.idp)
    await client.get("/login")  # this browser has a seed of its own
    stolen = await token_of_another_browser(running)
    before = await row_counts(running)

    response = await client.post("/login", data=login_data(stolen))

    assert response.status_code == 403
    assert await row_counts(running) == before


async def test_login_with_a_token_but_no_cookie_is_refused(running: Running, client: httpx.AsyncClient) -> None:
    await make_user(running.idp)
    stolen = await token_of_another_browser(running)
    before = await row_counts(running)

    response = await client.post("/login", data=login_data(stolen))  # a cross-site form post: no seed cookie

    assert response.status_code == 403
    assert await row_counts(running) == before


async def test_login_with_a_forged_seed_cookie_is_refused(running: Running, client: httpx.AsyncClient) -> None:
    await make_user(running.idp)
    token = await csrf_token(client)
    client.cookies.set("idp_csrf", "attacker-planted-seed-value", domain="testserver.local")
    before = await row_counts(running)

    response = await client.post("/login", data=login_data(token))

    assert response.status_code == 403
    assert await row_counts(running) == before


async def test_the_right_token_is_accepted(running: Running, client: httpx.AsyncClient) -> None:
    await make_user(running.idp)
    response = await submit_login(client, "person@example.com", PASSWORD)
    assert response.status_code == 303


async def signed_in(running: Running, client: httpx.AsyncClient) -> None:
    await make_user(running.idp)
    assert (await submit_login(client, "person@example.com", PASSWORD)).status_code == 303


@pytest.mark.parametrize("token", [None, "", "0" * 64, "other-browser"])
async def test_logout_with_a_bad_token_keeps_the_session(
    running: Running, client: httpx.AsyncClient, token: str | None
) -> None:
    await signed_in(running, client)
    if token == "other-browser":
        token = await token_of_another_browser(running)
    before = await row_counts(running)
    assert before["login_sessions"] == 1

    # A form with no fields at all is still sent as url-encoded by a browser.
    form = "" if token is None else httpx.QueryParams({"csrf_token": token})
    response = await client.post("/logout", content=str(form), headers={"content-type": FORM})

    assert response.status_code == 403
    assert "idp_session" not in response.headers.get("set-cookie", "")
    assert await row_counts(running) == before
    assert (await client.get("/account")).status_code == 200


async def test_logout_with_the_right_token_signs_out(running: Running, client: httpx.AsyncClient) -> None:
    await signed_in(running, client)
    response = await client.post("/logout", data={"csrf_token": await csrf_token(client, "/logout")})
    assert response.status_code == 200
    assert (await row_counts(running))["login_sessions"] == 0


FORM_ENDPOINTS = [
    "/login",
    "/logout",
    "/login/verify",
    "/login/recovery",
    "/account/security/totp",
    "/account/security/disable",
    "/account/security/backup-codes",
    "/account/security/backup-codes/saved",
    "/authorize/consent",
    "/authorize/cancel",
    "/end_session/confirm",
]


@pytest.mark.parametrize("path", FORM_ENDPOINTS)
@pytest.mark.parametrize("token", ["%C3%A9", "%C3%A9" * 64, "%E2%80%8B" + "0" * 63])
async def test_a_non_ascii_token_is_refused_not_a_crash(
    running: Running, client: httpx.AsyncClient, path: str, token: str
) -> None:
    """#10.6: a token that is not ASCII is just a wrong token (403), on every form, signed in or not."""
    await signed_in(running, client)
    await client.get("/login?reauth=1")  # the browser has its seed cookie
    before = await row_counts(running)

    response = await client.post(path, content=f"csrf_token={token}", headers={"content-type": FORM})

    assert response.status_code == 403, (path, response.status_code)
    assert await row_counts(running) == before


async def test_a_non_ascii_seed_cookie_is_not_a_seed(running: Running, client: httpx.AsyncClient) -> None:
    await make_user(running.idp)
    before = await row_counts(running)

    response = await client.post(
        "/login",
        content=f"csrf_token={'0' * 64}",
        headers={"content-type": FORM, "cookie": ("idp_csrf=" + "é" * 20).encode()},
    )

    assert response.status_code == 403
    assert await row_counts(running) == before
