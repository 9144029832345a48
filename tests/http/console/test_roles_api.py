"""Staff roles in the admin API (INTERFACE §5): `roles` on every user, set with PATCH, each change audited."""

from __future__ import annotations

from tests.conftest import Running
from tests.support.admin import API, admin_client, assert_api_error, audit_events
from tests.support.pages import make_user


async def test_roles_read_and_set_through_patch(running: Running) -> None:
    user = await make_user(running.idp)
    async with await admin_client(running, "ops") as admin:
        assert (await admin.get(f"{API}/users/{user.id}")).json()["roles"] == []
        granted = await admin.patch(f"{API}/users/{user.id}", json={"roles": ["admin", "support"]})
        assert granted.status_code == 200, granted.text
        assert granted.json()["roles"] == ["admin", "support"]
        listed = await admin.get(f"{API}/users", params={"email": "person@example.com"})
        assert listed.json()["items"][0]["roles"] == ["admin", "support"]
        narrowed = await admin.patch(f"{API}/users/{user.id}", json={"roles": ["support"], "name": "Helper"})
        assert (narrowed.json()["roles"], narrowed.json()["name"]) == (["support"], "Helper")
        assert_api_error(await admin.patch(f"{API}/users/{user.id}", json={"roles": ["root"]}), 422)
        assert_api_error(await admin.patch(f"{API}/users/nobody", json={"roles": ["support"]}), 404)
        assert_api_error(await admin.patch(f"{API}/users/nobody", json={"roles": []}), 404)
    assert await running.idp.users.roles(user.id) == ["support"]
    events = [(e.type, e.actor) for e in await audit_events(running) if "role" in e.type]
    assert events == [
        ("admin.role_granted", "admin:ops"),
        ("admin.role_granted", "admin:ops"),
        ("admin.role_revoked", "admin:ops"),
    ]
