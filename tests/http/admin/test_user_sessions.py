"""Admin API `GET /admin/api/users/{id}/sessions` (INTERFACE §5): the person's signed-in sessions, paged, with the
clients each signed into; ids are the opaque sid, never a cookie or its hash."""

from __future__ import annotations

import hashlib

from sqlalchemy import select

from idp.store.models import LoginSession
from tests.conftest import Running
from tests.support.admin import API, admin_client, assert_api_error, tokens_for
from tests.support.oidc import decode_id_token, make_client
from tests.support.pages import PASSWORD, make_user, submit_login

FIELDS = {"id", "created_at", "last_seen_at", "ip", "user_agent", "amr", "clients"}


async def test_the_sessions_of_a_person_paged(running: Running) -> None:
    person = await make_user(running.idp)
    other = await make_user(running.idp, "other@example.com")
    rp = await make_client(running.idp, "Jobs North")
    async with running.client(ip="198.51.100.7") as laptop, running.client() as phone, running.client() as theirs:
        laptop.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
        for browser, email in ((laptop, person.email), (phone, person.email), (theirs, other.email)):
            assert (await submit_login(browser, email, PASSWORD)).status_code == 303
        tokens = await tokens_for(running, laptop, rp, scope="openid")
        sid = (await decode_id_token(laptop, tokens["id_token"]))["sid"]
        cookies = [c.cookies.get(running.idp.cookies.session_name) for c in (laptop, phone)]

    async with await admin_client(running) as admin:
        first = await admin.get(f"{API}/users/{person.id}/sessions", params={"limit": 1})
        assert first.status_code == 200, first.text
        assert first.json()["next_cursor"]
        second = await admin.get(
            f"{API}/users/{person.id}/sessions", params={"limit": 1, "cursor": first.json()["next_cursor"]}
        )
        everything = await admin.get(f"{API}/users/{person.id}/sessions")
        unknown = await admin.get(f"{API}/users/{'0' * 36}/sessions")

    items = first.json()["items"] + second.json()["items"]
    assert second.json()["next_cursor"] is None
    assert everything.json()["items"] == items
    assert len(items) == 2
    assert all(set(item) == FIELDS for item in items)
    laptop_item = next(item for item in items if item["id"] == sid)
    assert laptop_item["ip"] == "198.51.100.7"
    assert "Firefox/128.0" in laptop_item["user_agent"]
    assert laptop_item["amr"] == ["pwd"]
    assert laptop_item["clients"] == [{"client_id": rp.client_id, "client_name": "Jobs North"}]
    # Never the cookie or the hash the database looks it up by.
    async with running.idp.db.transaction() as session:
        hashes = (await session.execute(select(LoginSession.id_hash))).scalars().all()
    for secret in [*cookies, *hashes, *(hashlib.sha256(str(c).encode()).hexdigest() for c in cookies)]:
        assert str(secret) not in everything.text
    assert_api_error(unknown, 404)


async def test_the_sessions_list_is_in_the_openapi_document(running: Running) -> None:
    async with await admin_client(running) as admin:
        document = (await admin.get(f"{API}/openapi.json")).json()
    assert "get" in document["paths"]["/admin/api/users/{user_id}/sessions"]
