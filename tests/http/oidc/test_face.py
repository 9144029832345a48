"""The job board's own face (issue #14, INTERFACE §3, §4): the board named on every step, "Cancel" back to it with
access_denied, display metadata through the admin API, the site name as the authenticator's issuer, return_to
checked against the board's registered URIs, "Confirm it's you", times in the browser's zone, the operator's look."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from idp.clock import FrozenClock
from idp.config import Settings, SettingsError, load_settings
from tests.conftest import Running
from tests.support.admin import API, admin_client, assert_api_error
from tests.support.mfa import (
    authenticator_added_elsewhere,
    codes_from,
    codes_page,
    confirm_saved,
    secret_from,
    totp_code,
)
from tests.support.oidc import REDIRECT_URI, RegisteredClient, auth_params, make_client, query_of
from tests.support.pages import PASSWORD, csrf_from, make_user, submit_login

LOGO = "https://cdn.jobbnorge.example/logo.png"
ISSUER = "http://testserver"
StartApp = Callable[..., Coroutine[Any, Any, Running]]


async def jobbnorge(running: Running, **kw: Any) -> RegisteredClient:
    return await make_client(running.idp, "jn-prod", client_name="Jobbnorge", logo_uri=LOGO, **kw)


def cancel_form(page: str) -> dict[str, str]:
    """The fields of the page's "Cancel" form (POST /authorize/cancel)."""
    form = re.search(r'<form method="post" action="/authorize/cancel".*?</form>', page, re.S)
    assert form, "no Cancel form on the page"
    fields = dict(re.findall(r'name="(csrf_token|next)" value="([^"]*)"', form.group(0)))
    return {k: html.unescape(v) for k, v in fields.items()}


def assert_access_denied(response: httpx.Response, params: dict[str, str]) -> None:
    """Back at the job board's registered redirect URI with error=access_denied, its state and our iss."""
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI + "?"), location
    answer = query_of(location)
    assert answer["error"] == "access_denied"
    assert answer["state"] == params["state"]
    assert answer["iss"] == ISSUER
    assert "code" not in answer


async def cancel(client: httpx.AsyncClient, page: httpx.Response) -> httpx.Response:
    return await client.post("/authorize/cancel", data=cancel_form(page.text))


def assert_names_the_board(page: httpx.Response, *, signed_in: bool = False) -> None:
    """The banner names the board; on pages for someone already signed in (consent, enrollment) it does not ask
    them to sign in."""
    if signed_in:
        assert '<p class="board-name">Continue to Jobbnorge</p>' in page.text
        assert "Sign in to continue" not in page.text
    else:
        assert '<p class="board-name">Sign in to continue to Jobbnorge</p>' in page.text
    assert f'<img class="board-logo" src="{LOGO}"' in page.text
    # The logo's origin, for images only: script and style stay 'self'.
    csp = page.headers["content-security-policy"]
    assert "img-src 'self' data: https://cdn.jobbnorge.example;" in csp
    assert "script-src 'self';" in csp
    assert "style-src 'self';" in csp


# -- the board on every step, and Cancel from each -------------------------------------------------------------


async def test_sign_in_names_the_board_and_cancel_returns_access_denied(
    running: Running, client: httpx.AsyncClient
) -> None:
    rp = await jobbnorge(running)
    params = auth_params(rp)
    start = await client.get("/authorize", params=params)
    login = await client.get(start.headers["location"])
    assert login.status_code == 200
    assert_names_the_board(login)
    assert "<title>Sign in · idp</title>" in login.text
    assert_access_denied(await cancel(client, login), params)


async def test_second_step_pages_name_the_board_and_cancel(
    running: Running, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    user = await make_user(running.idp)
    await authenticator_added_elsewhere(running, user.id, clock.now())
    rp = await jobbnorge(running)
    params = auth_params(rp)
    start = await client.get("/authorize", params=params)
    next_url = query_of(start.headers["location"])["next"]
    signed = await submit_login(client, "person@example.com", PASSWORD, next_url=next_url)
    assert signed.headers["location"].startswith("/login/verify?")
    for path in ("/login/verify", "/login/recovery"):
        page = await client.get(path, params={"next": next_url})
        assert page.status_code == 200, path
        assert_names_the_board(page)
        assert_access_denied(await cancel(client, page), params)


async def test_enrollment_says_which_board_asks_and_why_and_cancel(running: Running, client: httpx.AsyncClient) -> None:
    await make_user(running.idp)
    rp = await jobbnorge(running, require_mfa=True)
    params = auth_params(rp)
    start = await client.get("/authorize", params=params)
    next_url = query_of(start.headers["location"])["next"]
    await submit_login(client, "person@example.com", PASSWORD, next_url=next_url)
    step = await client.get("/authorize", params=params)
    setup = await client.get(step.headers["location"])
    assert setup.headers["location"].startswith("/account/security/totp?")
    page = await client.get(setup.headers["location"])
    assert page.status_code == 200
    assert_names_the_board(page, signed_in=True)
    assert "Jobbnorge asks for two-step verification" in page.text
    assert_access_denied(await cancel(client, page), params)


async def test_consent_names_the_board_and_cancel_is_access_denied(running: Running, client: httpx.AsyncClient) -> None:
    await make_user(running.idp)
    rp = await jobbnorge(running, require_consent=True)
    params = auth_params(rp)
    start = await client.get("/authorize", params=params)
    next_url = query_of(start.headers["location"])["next"]
    signed = await submit_login(client, "person@example.com", PASSWORD, next_url=next_url)
    consent = await client.get(signed.headers["location"])
    assert consent.status_code == 200
    assert_names_the_board(consent, signed_in=True)
    assert "Jobbnorge wants to use your account" in consent.text
    in_bokmal = await client.get(signed.headers["location"], headers={"Accept-Language": "nb"})
    assert '<p class="board-name">Fortsett til Jobbnorge</p>' in in_bokmal.text
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', consent.text))
    fields = {k: html.unescape(v) for k, v in fields.items()}
    denied = await client.post("/authorize/consent", data={**fields, "decision": "deny"})
    assert_access_denied(denied, params)


async def test_cancel_never_redirects_to_an_address_the_board_did_not_register(
    running: Running, client: httpx.AsyncClient
) -> None:
    rp = await jobbnorge(running)
    login = await client.get("/login")
    token = csrf_from(login.text)
    for forged in (
        {**auth_params(rp), "redirect_uri": "https://evil.example/callback"},
        {**auth_params(rp), "client_id": "no-such-client"},
    ):
        answer = await client.post(
            "/authorize/cancel", data={"csrf_token": token, "next": "/authorize?" + urlencode(forged)}
        )
        assert answer.status_code == 400
        assert "location" not in answer.headers
    for not_a_request in ("https://evil.example/", "//evil.example/authorize", "/account"):
        answer = await client.post("/authorize/cancel", data={"csrf_token": token, "next": not_a_request})
        assert answer.status_code == 400
        assert "location" not in answer.headers
    # Without the form's CSRF token nothing happens.
    assert (
        await client.post("/authorize/cancel", data={"next": "/authorize?" + urlencode(auth_params(rp))})
    ).status_code == 403


async def test_a_board_without_display_metadata_shows_its_name_and_no_image(
    running: Running, client: httpx.AsyncClient
) -> None:
    rp = await make_client(running.idp, "Plain Jobs")
    start = await client.get("/authorize", params=auth_params(rp))
    login = await client.get(start.headers["location"])
    assert "Sign in to continue to Plain Jobs" in login.text
    assert "board-logo" not in login.text
    assert "img-src 'self' data:;" in login.headers["content-security-policy"]


async def test_the_board_name_is_escaped(running: Running, client: httpx.AsyncClient) -> None:
    rp = await make_client(running.idp, "x", client_name='<script>alert(1)</script>"Jobs"')
    start = await client.get("/authorize", params=auth_params(rp))
    login = await client.get(start.headers["location"])
    assert "<script>alert" not in login.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&#34;Jobs&#34;" in login.text


# -- display metadata through the admin API -----------------------------------------------------------------


async def test_display_metadata_through_the_admin_api(running: Running) -> None:
    async with await admin_client(running) as admin:
        created = await admin.post(
            f"{API}/clients",
            json={
                "name": "jn-prod",
                "redirect_uris": [REDIRECT_URI],
                "client_name": "Jobbnorge",
                "logo_uri": LOGO,
                "client_uri": "https://jobbnorge.example/",
            },
        )
        assert created.status_code == 201, created.text
        body = created.json()
        assert (body["client_name"], body["logo_uri"], body["client_uri"]) == (
            "Jobbnorge",
            LOGO,
            "https://jobbnorge.example/",
        )
        client_id = body["client_id"]
        changed = await admin.patch(f"{API}/clients/{client_id}", json={"client_name": "Jobbnorge AS", "logo_uri": ""})
        assert changed.status_code == 200, changed.text
        assert (changed.json()["client_name"], changed.json()["logo_uri"]) == ("Jobbnorge AS", None)
        for bad in (
            {"logo_uri": "http://cdn.jobbnorge.example/logo.png"},
            {"logo_uri": "javascript:alert(1)"},
            {"logo_uri": "https://user:pw@cdn.example/logo.png"},
            {"logo_uri": "https://cdn.example;script-src/logo.png"},
            {"client_uri": "ftp://jobbnorge.example/"},
            {"client_name": "Jobb\nnorge"},
        ):
            refused = await admin.patch(f"{API}/clients/{client_id}", json=bad)
            assert refused.status_code in (400, 422), (bad, refused.text)
            assert_api_error(refused, refused.status_code)
        kept = (await admin.get(f"{API}/clients/{client_id}")).json()
        assert (kept["client_name"], kept["logo_uri"]) == ("Jobbnorge AS", None)


# -- the authenticator app shows the site name -----------------------------------------------------------------


async def test_the_otpauth_issuer_label_is_the_site_name(
    start_app: StartApp, make_settings: Callable[..., Settings], clock: FrozenClock
) -> None:
    running = await start_app(make_settings(site_name="Jobbnorge ID"))
    await make_user(running.idp)
    async with running.client() as client:
        await submit_login(client, "person@example.com", PASSWORD)
        page = await client.get("/account/security/totp")
        assert "<title>Set up two-step verification · Jobbnorge ID</title>" in page.text
        link = re.search(r'id="otpauth-link" href="([^"]+)"', page.text)
        assert link
        uri = urlsplit(html.unescape(link.group(1)))
        assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
        assert uri.path == "/Jobbnorge%20ID:person%40example.com"
        query = parse_qs(uri.query)
        assert query["issuer"] == ["Jobbnorge ID"]
        assert query["secret"] == [secret_from(page.text)]


# -- backup codes: Post/Redirect/Get, and "I have saved these codes" -------------------------------------------


async def test_backup_codes_are_shown_after_a_redirect_until_saved(
    running: Running, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await make_user(running.idp)
    await submit_login(client, "person@example.com", PASSWORD)
    page = await client.get("/account/security/totp")
    posted = await client.post(
        "/account/security/totp",
        data={"code": totp_code(secret_from(page.text), clock.now()), "csrf_token": csrf_from(page.text)},
    )
    # The answer to the POST is a redirect whose URL carries no code.
    assert posted.status_code == 303
    assert posted.headers["location"] == "/account/security/backup-codes?done=enabled"
    shown = await codes_page(client, posted)
    codes = codes_from(shown.text)
    assert len(set(codes)) == 8
    # Reload shows the same codes; the download is exactly them.
    assert codes_from((await client.get(posted.headers["location"])).text) == codes
    download = await client.get("/account/security/backup-codes/download")
    assert download.text.strip().splitlines()[1:] == codes
    # Leaving without ticking the box is refused, and the codes stay on the page.
    unticked = await client.post(
        "/account/security/backup-codes/saved", data={"csrf_token": csrf_from(shown.text), "done": "enabled"}
    )
    assert unticked.status_code == 400
    assert codes_from(unticked.text) == codes
    onward = await confirm_saved(client, shown)
    assert onward.headers["location"] == "/account/security?done=enabled"
    # Saved: shown no more, downloadable no more.
    again = await client.get("/account/security/backup-codes")
    assert again.status_code == 303
    assert (await client.get("/account/security/backup-codes/download")).status_code == 410


# -- return_to from a job board's "My profile → Two-step verification" -------------------------------------------


async def test_return_to_is_a_back_link_only_to_the_boards_own_site(
    running: Running, client: httpx.AsyncClient
) -> None:
    rp = await jobbnorge(running)
    await make_user(running.idp)
    query = {"client_id": rp.client_id, "return_to": "https://jobs.example/my/profile"}
    # Signed out: sign in first, and come back to the same page with the same return_to.
    first = await client.get("/account/security", params=query)
    assert first.status_code == 303
    next_url = query_of(first.headers["location"])["next"]
    assert query_of(next_url) == query
    await submit_login(client, "person@example.com", PASSWORD)
    page = await client.get("/account/security", params=query)
    assert '<a id="back-to-board" href="https://jobs.example/my/profile">Back to Jobbnorge</a>' in page.text
    for refused in (
        {"client_id": rp.client_id, "return_to": "https://evil.example/my/profile"},
        {"client_id": rp.client_id, "return_to": "http://jobs.example/my/profile"},
        {"client_id": rp.client_id, "return_to": "https://jobs.example.evil.example/"},
        {"client_id": rp.client_id, "return_to": "https://user@jobs.example/"},
        {"client_id": rp.client_id, "return_to": "javascript:alert(1)"},
        {"client_id": "no-such-client", "return_to": "https://jobs.example/my/profile"},
        {"return_to": "https://jobs.example/my/profile"},
    ):
        page = await client.get("/account/security", params=refused)
        assert page.status_code == 200
        assert "back-to-board" not in page.text, refused
        assert not re.search(r'href="(https://evil|javascript:|https://user@)', page.text)


# -- "Confirm it's you" -----------------------------------------------------------------------------------------


async def test_enabling_after_fifteen_minutes_asks_to_confirm_with_the_email_filled_in(
    running: Running, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await make_user(running.idp)
    await submit_login(client, "person@example.com", PASSWORD)
    clock.advance(16 * 60)
    to_login = await client.get("/account/security/totp")
    assert to_login.status_code == 303
    page = await client.get(to_login.headers["location"])
    assert page.status_code == 200
    assert "<h1>Confirm it&#39;s you</h1>" in page.text
    assert 'value="person@example.com"' in page.text
    again = await submit_login(
        client,
        "person@example.com",
        PASSWORD,
        next_url=query_of(to_login.headers["location"])["next"],
        form_page=to_login.headers["location"],
    )
    assert again.headers["location"] == "/account/security/totp"
    assert 'id="totp-secret"' in (await client.get("/account/security/totp")).text


async def test_prompt_login_asks_to_confirm_it_is_you(running: Running, client: httpx.AsyncClient) -> None:
    rp = await jobbnorge(running)
    await make_user(running.idp)
    await submit_login(client, "person@example.com", PASSWORD)
    start = await client.get("/authorize", params=auth_params(rp, prompt="login"))
    page = await client.get(start.headers["location"])
    assert "<h1>Confirm it&#39;s you</h1>" in page.text
    assert 'value="person@example.com"' in page.text
    assert "Sign in to continue to Jobbnorge" in page.text


# -- times in the person's zone ---------------------------------------------------------------------------------


async def test_times_are_in_the_browsers_zone_or_say_utc(running: Running, client: httpx.AsyncClient) -> None:
    await make_user(running.idp)
    await submit_login(client, "person@example.com", PASSWORD)
    utc = await client.get("/account")
    shown = re.search(r'<time datetime="([^"]+)">([^<]+)</time>', utc.text)
    assert shown
    assert shown.group(2).endswith(" UTC")
    client.cookies.set("idp_tz", "Asia/Kolkata")  # +05:30 all year: no daylight saving to reckon with
    local = await client.get("/account")
    moved = re.search(r'<time datetime="[^"]+">([^<]+)</time>', local.text)
    assert moved
    assert moved.group(1) != shown.group(2)
    assert "UTC" not in moved.group(1)
    for junk in ("Not/AZone", "../../etc/passwd", "x" * 100):
        client.cookies.set("idp_tz", junk)
        assert (await client.get("/account")).text.count(" UTC</time>") == 1


# -- the operator's look -----------------------------------------------------------------------------------------


async def test_logo_and_accent_colour_are_served_from_idp_itself(
    start_app: StartApp, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    logo = tmp_path / "logo.svg"
    logo.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')
    running = await start_app(make_settings(logo_file=str(logo), accent_color="#7A1F5C"))
    async with running.client() as client:
        page = await client.get("/login")
        assert 'src="/brand/logo?v=' in page.text
        assert 'href="/brand/theme.css?v=' in page.text
        served = await client.get("/brand/logo")
        assert served.headers["content-type"] == "image/svg+xml"
        assert served.content == logo.read_bytes()
        theme = await client.get("/brand/theme.css")
        assert theme.headers["content-type"].startswith("text/css")
        assert theme.text == ":root { --accent: #7a1f5c; }\n"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("IDP_ACCENT_COLOR", "red"),
        ("IDP_ACCENT_COLOR", "#fff"),
        ("IDP_ACCENT_COLOR", "#ffee00"),  # too light for white text
        ("IDP_ACCENT_COLOR", "#0b5cad;}body{x"),
        ("IDP_LOGO_FILE", "/no/such/logo.png"),
        ("IDP_LOGO_FILE", "/etc/passwd"),
    ],
)
def test_bad_look_settings_stop_start_up_naming_the_variable(name: str, value: str) -> None:
    field = name.removeprefix("IDP_").lower()
    with pytest.raises(SettingsError, match=name):
        load_settings(_env_file=None, **{field: value})
