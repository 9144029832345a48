"""Every kind of bad input to the admin API: the JSON error shape with 400/404/409/413/415/422, never a 500,
and nothing changed anywhere (every table compared row by row before and after)."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from idp.clock import FrozenClock
from tests.conftest import Running
from tests.support.admin import API, admin_client, assert_api_error, dump_tables
from tests.support.mfa import enroll
from tests.support.oidc import REDIRECT_URI, make_client
from tests.support.pages import PASSWORD, make_user, submit_login

JSON = {"content-type": "application/json"}
# Admin tokens keep their last use, and refused requests may count against the attempt limit: both by design.
VOLATILE = ("admin_tokens", "ratelimit_hits")
UNKNOWN_USER = "00000000-0000-0000-0000-000000000000"


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def raw(body: bytes) -> dict[str, Any]:
    return {"content": body, "headers": JSON}


def bad_requests(uid: str, cid: str, signer: str) -> list[tuple[str, str, dict[str, Any], int]]:
    """(method, path under /admin/api, httpx arguments, expected status)."""
    board = {"name": "Board", "redirect_uris": [REDIRECT_URI]}
    return [
        # Malformed JSON.
        ("POST", "/users", raw(b"{"), 400),
        ("PATCH", f"/users/{uid}", raw(b'{"name": "x",}'), 400),
        ("POST", "/clients", raw(b"\xff\xfe\x00"), 400),
        ("PATCH", f"/clients/{cid}", raw(b""), 400),
        ("POST", f"/users/{uid}/mfa/reset", raw(b"{'reason': 'single quotes'}"), 400),
        ("POST", "/users", raw(b"[" * 20000 + b"]" * 20000), 400),  # deeper than any JSON parser goes
        ("POST", "/clients", raw(b'{"name": "B"' + b', "x": [' * 3000 + b"]" * 3000 + b"}"), 400),
        # JSON, but not an object.
        ("POST", "/users", {"json": ["a@example.com"]}, 422),
        ("PATCH", f"/users/{uid}", {"json": "name"}, 422),
        ("POST", f"/users/{uid}/mfa/reset", raw(b"null"), 422),
        ("POST", "/clients", {"json": 1}, 422),
        # Not JSON at all.
        ("POST", "/users", {"data": {"email": "x@example.com"}}, 415),
        ("POST", f"/users/{uid}/mfa/reset", {"content": b'{"reason": "id checked"}'}, 415),
        ("PATCH", f"/clients/{cid}", {"content": b'{"name": "x"}', "headers": {"content-type": "text/plain"}}, 415),
        # Wrong types: never coerced.
        ("POST", "/users", {"json": {"email": 5}}, 422),
        ("POST", "/users", {"json": {"email": "x@example.com", "name": ["x"]}}, 422),
        ("POST", "/users", {"json": {"email": "x@example.com", "password": 12345678}}, 422),
        ("PATCH", f"/users/{uid}", {"json": {"name": "New", "disabled": "yes"}}, 422),
        ("PATCH", f"/users/{uid}", {"json": {"name": "New", "disabled": 1}}, 422),
        ("PATCH", f"/users/{uid}", raw(b'{"name": "New", "disabled": NaN}'), 422),
        ("POST", "/clients", {"json": {**board, "redirect_uris": REDIRECT_URI}}, 422),
        ("POST", "/clients", {"json": {**board, "require_mfa": "true"}}, 422),
        ("POST", "/clients", {"json": {**board, "redirect_uris": [REDIRECT_URI, 7]}}, 422),
        ("PATCH", f"/clients/{cid}", {"json": {"name": "New", "require_consent": 0}}, 422),
        ("POST", f"/users/{uid}/mfa/reset", {"json": {"reason": ["id checked"]}}, 422),
        # Unknown fields.
        ("POST", "/users", {"json": {"email": "x@example.com", "is_admin": True}}, 422),
        ("PATCH", f"/users/{uid}", {"json": {"name": "New", "email": "new@example.com"}}, 422),
        ("PATCH", f"/users/{uid}", {"json": {"name": "New", "password": "a new long password"}}, 422),
        ("PATCH", f"/clients/{cid}", {"json": {"name": "New", "public": True}}, 422),
        ("PATCH", f"/clients/{cid}", {"json": {"client_secret": "one I chose myself"}}, 422),
        ("POST", "/clients", {"json": {**board, "client_id": "chosen"}}, 422),
        ("POST", f"/users/{uid}/mfa/reset", {"json": {"reason": "id checked", "keep_sessions": True}}, 422),
        # Values the rules refuse.
        ("POST", "/users", {"json": {"email": "not-an-email"}}, 422),
        ("POST", "/users", {"json": {"email": "x@example.com", "password": "short"}}, 422),
        ("POST", "/users", {"json": {"email": "x@example.com", "name": "bell\u0007"}}, 422),
        ("POST", "/users", {"json": {"email": "x" * 321 + "@example.com"}}, 422),
        ("PATCH", f"/users/{uid}", {"json": {"name": "x" * 201}}, 422),
        ("POST", "/clients", {"json": {**board, "redirect_uris": ["http://evil.example/cb"]}}, 422),
        ("POST", "/clients", {"json": {"name": "Board"}}, 422),  # the code grant needs a redirect URI
        ("POST", "/clients", {"json": {**board, "public": True, "grant_types": ["client_credentials"]}}, 422),
        ("POST", "/clients", {"json": {**board, "grant_types": ["implicit"]}}, 422),
        ("POST", "/clients", {"json": {**board, "grant_types": []}}, 422),
        ("POST", "/clients", {"json": {**board, "id_token_signed_response_alg": "none"}}, 422),
        ("POST", "/clients", {"json": {**board, "redirect_uris": [f"https://b.example/{n}" for n in range(21)]}}, 422),
        ("PATCH", f"/clients/{cid}", {"json": {"name": "New", "redirect_uris": [REDIRECT_URI + "#frag"]}}, 422),
        ("PATCH", f"/clients/{cid}", {"json": {"name": "New", "redirect_uris": []}}, 422),
        ("PATCH", f"/clients/{cid}", {"json": {"name": ""}}, 422),
        ("PATCH", f"/clients/{cid}", {"json": {"name": "   "}}, 422),
        # A reset without a reason.
        ("POST", f"/users/{uid}/mfa/reset", {"json": {}}, 422),
        ("POST", f"/users/{uid}/mfa/reset", {"json": {"reason": ""}}, 422),
        ("POST", f"/users/{uid}/mfa/reset", {"json": {"reason": " \t\n "}}, 422),
        ("POST", f"/users/{uid}/mfa/reset", {"json": {"reason": None}}, 422),
        ("POST", f"/users/{uid}/mfa/reset", {"json": {"reason": "x" * 501}}, 422),
        # NUL characters, which PostgreSQL refuses in text: in a body, a query or a path.
        ("POST", "/users", {"json": {"email": "nul\u0000@example.com"}}, 422),
        ("POST", "/users", {"json": {"email": "x@example.com", "password": "long enough\u0000"}}, 422),
        ("POST", "/clients", {"json": {**board, "name": "Board\u0000"}}, 422),
        ("PATCH", f"/users/{uid}", {"json": {"name": "a\u0000"}}, 422),
        ("PATCH", f"/clients/{cid}", {"json": {"name": "a\u0000"}}, 422),
        ("POST", f"/users/{uid}/mfa/reset", {"json": {"reason": "id checked\u0000"}}, 422),
        ("GET", "/users", {"params": {"email": "a\u0000@example.com"}}, 422),
        ("GET", "/users", {"params": {"cursor": b64("\u0000")}}, 400),
        ("GET", "/clients", {"params": {"cursor": b64("a\u0000")}}, 400),
        ("GET", "/audit", {"params": {"user_id": "\u0000"}}, 422),
        ("GET", "/audit", {"params": {"type": "login\u0000"}}, 422),
        ("GET", "/users/%00", {}, 404),
        ("PATCH", "/users/%00", {"json": {"name": "x"}}, 404),
        ("DELETE", "/clients/a%00", {}, 404),
        ("POST", "/keys/%00/retire", {}, 404),
        # Bad queries.
        ("GET", f"/users/{uid}", {"params": {"expand": "all"}}, 400),
        ("GET", "/keys", {"params": {"expand": "all"}}, 422),
        ("GET", "/users", {"params": {"limit": "-1"}}, 422),
        ("GET", "/users", {"params": {"limit": "1e3"}}, 422),
        ("GET", "/users", {"params": {"email": "x" * 321}}, 422),
        ("GET", "/users", {"params": {"cursor": ""}}, 400),
        ("GET", "/clients", {"params": {"cursor": "%%%"}}, 400),
        ("GET", "/clients", {"params": {"cursor": "x" * 201}}, 422),
        ("GET", "/audit", {"params": {"cursor": b64("9" * 19)}}, 400),
        ("GET", "/audit", {"params": {"since": "2026-01-05T09:00:00"}}, 422),
        ("GET", "/audit", {"params": {"since": "2026-13-45T99:00:00Z"}}, 422),
        # Unknown ids.
        ("GET", f"/users/{UNKNOWN_USER}", {}, 404),
        ("GET", "/users/" + "x" * 100, {}, 404),
        ("PATCH", f"/users/{UNKNOWN_USER}", {"json": {"name": "x"}}, 404),
        ("PATCH", f"/users/{UNKNOWN_USER}", {"json": {"disabled": True}}, 404),
        ("DELETE", f"/users/{UNKNOWN_USER}", {}, 404),
        ("DELETE", "/users/" + "x" * 100, {}, 404),
        ("POST", f"/users/{UNKNOWN_USER}/mfa/reset", {"json": {"reason": "id checked"}}, 404),
        ("POST", f"/users/{UNKNOWN_USER}/sessions/revoke", {}, 404),
        ("GET", "/clients/nobody", {}, 404),
        ("GET", "/clients/" + "x" * 100, {}, 404),
        ("PATCH", "/clients/nobody", {"json": {"name": "x"}}, 404),
        ("DELETE", "/clients/nobody", {}, 404),
        ("POST", "/clients/nobody/secret", {}, 404),
        ("POST", "/keys/nobody/retire", {}, 404),
        ("GET", "/nothing/here", {}, 404),
        # Conflicts.
        ("POST", "/users", {"json": {"email": "PERSON@example.com"}}, 409),
        ("POST", f"/keys/{signer}/retire", {}, 409),
        # Methods a path does not take.
        ("PUT", f"/users/{uid}", {"json": {"name": "x"}}, 405),
        ("DELETE", "/keys", {}, 405),
    ]


@pytest.fixture
async def world(running: Running, client: httpx.AsyncClient, clock: FrozenClock) -> dict[str, str]:
    """A person with two-step verification and a session, and a job board."""
    user = await make_user(running.idp, name="Pat")
    await submit_login(client, "person@example.com", PASSWORD)
    await enroll(client, clock.now())
    rp = await make_client(running.idp)
    signer = running.idp.key_ring.signer("RS256").kid
    return {"uid": user.id, "cid": rp.client_id, "signer": signer}


async def test_every_bad_request_is_a_json_error_and_changes_nothing(
    running: Running, client: httpx.AsyncClient, world: dict[str, str]
) -> None:
    async with await admin_client(running) as admin:
        before = await dump_tables(running, skip=VOLATILE)
        for method, path, kwargs, status in bad_requests(world["uid"], world["cid"], world["signer"]):
            response = await admin.request(method, API + path, **kwargs)
            case = f"{method} {path} {str(kwargs)[:120]}"
            assert response.status_code == status, (case, response.status_code, response.text[:300])
            assert_api_error(response, status)
            assert await dump_tables(running, skip=VOLATILE) == before, f"{case} changed something"
    # The person's session survived it all.
    assert (await client.get("/account")).status_code == 200


async def test_an_oversized_body_is_413_json_and_changes_nothing(running: Running, world: dict[str, str]) -> None:
    async with await admin_client(running) as admin:
        before = await dump_tables(running, skip=VOLATILE)
        big = await admin.patch(f"{API}/users/{world['uid']}", json={"name": "x" * (70 * 1024)})
        assert_api_error(big, 413, "invalid_request")

        async def chunks():  # type: ignore[no-untyped-def]
            yield b'{"reason": "'
            for _ in range(8):
                yield b"a" * 16384
            yield b'"}'

        chunked = await admin.post(f"{API}/users/{world['uid']}/mfa/reset", content=chunks(), headers=JSON)
        assert_api_error(chunked, 413, "invalid_request")
        lying = await admin.post(
            f"{API}/users", content=b'{"email": "x@example.com"}', headers={**JSON, "content-length": "999999999"}
        )
        assert lying.status_code in (400, 413)
        assert await dump_tables(running, skip=VOLATILE) == before


async def test_a_bad_request_without_a_token_is_401_first(running: Running, client: httpx.AsyncClient) -> None:
    response = await client.post(f"{API}/users", content=b"{", headers=JSON)
    assert_api_error(response, 401, "unauthorized")
