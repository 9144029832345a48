"""Every response frames nothing and runs no inline code: X-Frame-Options, a strict CSP, and safe cookies."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

import idp
from tests.conftest import Running
from tests.support.pages import PASSWORD, csrf_token, make_user, submit_login

TEMPLATES = Path(idp.__file__).parent / "templates"

PAGES = [
    ("GET", "/login", 200),
    ("GET", "/account", 303),
    ("GET", "/logout", 200),
    ("GET", "/healthz", 200),
    ("GET", "/readyz", 200),
    ("GET", "/metrics", 404),  # only on the management port
    ("GET", "/no/such/page", 404),
    ("GET", "/static/idp.css", 200),
    ("GET", "/static/missing.css", 404),
    ("DELETE", "/login", 405),
    ("POST", "/login", 403),
    ("POST", "/logout", 403),
]


def assert_strict_headers(response: httpx.Response) -> None:
    assert response.headers["x-frame-options"] == "DENY"
    csp = response.headers["content-security-policy"]
    directives = {part.strip().split(" ", 1)[0]: part.strip() for part in csp.split(";") if part.strip()}
    assert directives["frame-ancestors"] == "frame-ancestors 'none'"
    assert "'unsafe-inline'" not in csp
    assert "'unsafe-eval'" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(("method", "path", "status"), PAGES)
async def test_every_response_carries_the_security_headers(
    client: httpx.AsyncClient, method: str, path: str, status: int
) -> None:
    data = {"username": "x@example.com", "password": "x"} if method == "POST" else None
    response = await client.request(method, path, data=data)
    assert response.status_code == status
    assert_strict_headers(response)


async def test_signed_in_pages_and_failures_carry_the_headers(running: Running, client: httpx.AsyncClient) -> None:
    await make_user(running.idp)
    failed = await submit_login(client, "person@example.com", "wrong password here")
    assert failed.status_code == 400
    assert_strict_headers(failed)
    signed_in = await submit_login(client, "person@example.com", PASSWORD)
    assert signed_in.status_code == 303
    assert_strict_headers(signed_in)
    account = await client.get("/account")
    assert account.status_code == 200
    assert_strict_headers(account)
    logout = await client.post("/logout", data={"csrf_token": await csrf_token(client, "/logout")})
    assert logout.status_code == 200
    assert_strict_headers(logout)


def template_files() -> list[Path]:
    files = sorted(TEMPLATES.rglob("*.html"))
    assert files, f"no templates under {TEMPLATES}"
    return files


@pytest.mark.parametrize("template", template_files(), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_templates_have_no_inline_script_or_style(template: Path) -> None:
    html = template.read_text(encoding="utf-8")
    # Script only as idp's own static files: every <script> is `<script src="{{ static_url(...) }}" defer></script>`.
    scripts = re.findall(r"<script\b[^>]*>", html, re.IGNORECASE)
    own = re.compile(r'<script src="\{\{ static_url\(\'[a-z-]+\.js\'\) \}\}" defer>')
    assert all(own.fullmatch(s) for s in scripts), scripts
    assert len(re.findall(r"</script>", html, re.IGNORECASE)) == len(scripts)
    assert not re.search(r"<script\b[^>]*>[^<]", html, re.IGNORECASE), "inline script"
    assert not re.search(r"<style\b", html, re.IGNORECASE), "inline <style> block"
    assert not re.search(r"\sstyle\s*=", html, re.IGNORECASE), "style= attribute"
    assert not re.search(r"\son[a-z]+\s*=", html, re.IGNORECASE), "inline event handler"
    assert "javascript:" not in html.lower()


async def test_rendered_pages_have_no_inline_script_or_style(running: Running, client: httpx.AsyncClient) -> None:
    await make_user(running.idp)
    pages = [await client.get("/login"), await client.get("/logout")]
    pages.append(await submit_login(client, "person@example.com", "wrong password here"))
    await submit_login(client, "person@example.com", PASSWORD)
    pages.append(await client.get("/account"))
    pages.append(await client.get("/no/such/page"))
    for page in pages:
        assert page.headers["content-type"].startswith("text/html")
        assert not re.search(r"<script\b(?![^>]*\ssrc=\"/static/)|<style\b|\sstyle\s*=|\son[a-z]+\s*=", page.text, re.I)
        assert not re.search(r"<script\b[^>]*>[^<]", page.text, re.IGNORECASE), "inline script"


def set_cookies(response: httpx.Response) -> dict[str, str]:
    return {header.split("=", 1)[0]: header for header in response.headers.get_list("set-cookie")}


def assert_safe_cookie(header: str) -> None:
    attributes = [part.strip().lower() for part in header.split(";")[1:]]
    assert "httponly" in attributes, header
    assert "samesite=lax" in attributes, header
    assert "path=/" in attributes, header


async def test_every_cookie_is_httponly_and_samesite_lax(running: Running, client: httpx.AsyncClient) -> None:
    await make_user(running.idp)
    seen: dict[str, str] = {}

    form = await client.get("/login")
    seen.update(set_cookies(form))
    assert "idp_csrf" in seen
    seen.update(set_cookies(await client.get("/login", params={"lang": "nb"})))
    assert "idp_lang" in seen
    signed_in = await submit_login(client, "person@example.com", PASSWORD)
    seen.update(set_cookies(signed_in))
    assert "idp_session" in set_cookies(signed_in)
    signed_out = await client.post("/logout", data={"csrf_token": await csrf_token(client, "/logout")})
    assert "idp_session" in set_cookies(signed_out)  # the clearing cookie

    for header in [*seen.values(), *set_cookies(signed_out).values()]:
        assert_safe_cookie(header)
        assert "secure" not in header.lower()  # the issuer is http here


async def test_cookies_are_secure_and_host_bound_over_https(start_app, make_settings) -> None:  # type: ignore[no-untyped-def]
    running = await start_app(make_settings(issuer="https://login.example.com"))
    await make_user(running.idp)
    async with running.client(base_url="https://login.example.com") as client:
        form = await client.get("/login")
        switched = await client.get("/login", params={"lang": "nb"})  # the language switcher's cookie
        signed_in = await submit_login(client, "person@example.com", PASSWORD)
    headers = [*set_cookies(form).values(), *set_cookies(signed_in).values(), *set_cookies(switched).values()]
    assert {header.split("=", 1)[0] for header in headers} == {
        "__Host-idp_csrf",
        "__Host-idp_session",
        "__Host-idp_device",
        "idp_lang",
    }
    for header in headers:
        assert_safe_cookie(header)
        assert "secure" in [part.strip().lower() for part in header.split(";")]
        assert "domain=" not in header.lower()
    assert_strict_headers(form)
    assert form.headers["strict-transport-security"].startswith("max-age=")
