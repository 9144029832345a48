"""CLI parity for operators (INTERFACE §2, §5), run as real processes on SQLite and PostgreSQL: users
list/show/disable/reset-mfa, clients list/show/rotate-secret/delete, admin-tokens create/list/revoke, audit list.
Every command prints JSON; every failure is one line on stderr."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from idp.config import Settings
from idp.store.models import Passkey
from tests.cli.test_cli import arun_idp, assert_one_line_failure, run_idp
from tests.conftest import FAST_ARGON2, Running
from tests.http.account.test_passkeys import add_passkey, sign_out, use_passkey
from tests.support.admin import admin_client
from tests.support.mfa import enroll
from tests.support.pages import submit_login
from tests.support.passkeys import SoftAuthenticator, request_options_from

StartApp = Callable[[Settings], Coroutine[Any, Any, Running]]
PASSWORD = "an operator-set password"


def idp_json(*args: str, database_url: str, cwd: Path, stdin: str = "") -> Any:
    result = run_idp(*args, database_url=database_url, cwd=cwd, stdin=stdin)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return json.loads(result.stdout)


async def aidp_json(*args: str, database_url: str, cwd: Path, stdin: str = "") -> Any:
    """`idp_json` while the app runs in this event loop (see `arun_idp`)."""
    return await asyncio.to_thread(idp_json, *args, database_url=database_url, cwd=cwd, stdin=stdin)


async def serve(start_app: StartApp, database_url: str) -> Running:
    """The app on the database the commands use, as a second process would see it."""
    settings = Settings(_env_file=None, database_url=database_url, issuer="http://testserver", **FAST_ARGON2)  # type: ignore[call-arg]
    return await start_app(settings)


async def test_admin_tokens_create_list_revoke(migrated: str, tmp_path: Path, start_app: StartApp) -> None:
    created = await aidp_json("admin-tokens", "create", "--name", "deploy bot", database_url=migrated, cwd=tmp_path)
    assert set(created) == {"id", "name", "token"}
    assert created["name"] == "deploy bot"
    assert created["token"].startswith("idpadm_")

    listed = await aidp_json("admin-tokens", "list", database_url=migrated, cwd=tmp_path)
    assert listed == [
        {"id": created["id"], "name": "deploy bot", "created_at": listed[0]["created_at"], "last_used_at": None,
         "revoked_at": None}
    ]  # fmt: skip
    listing = await arun_idp("admin-tokens", "list", database_url=migrated, cwd=tmp_path)
    assert created["token"] not in listing.stdout  # shown once, at creation

    running = await serve(start_app, migrated)
    headers = {"Authorization": f"Bearer {created['token']}"}
    async with running.client() as admin:
        assert (await admin.get("/admin/api/users", headers=headers)).status_code == 200
        assert (await aidp_json("admin-tokens", "list", database_url=migrated, cwd=tmp_path))[0]["last_used_at"]

        revoked = await aidp_json("admin-tokens", "revoke", created["id"], database_url=migrated, cwd=tmp_path)
        assert revoked == {"revoked": created["id"]}
        assert (await admin.get("/admin/api/users", headers=headers)).status_code == 401
    assert (await aidp_json("admin-tokens", "list", database_url=migrated, cwd=tmp_path))[0]["revoked_at"]

    again = await arun_idp("admin-tokens", "revoke", created["id"], database_url=migrated, cwd=tmp_path)
    assert "no live admin token" in assert_one_line_failure(again)
    assert_one_line_failure(await arun_idp("admin-tokens", "revoke", "no-such-id", database_url=migrated, cwd=tmp_path))
    empty_name = await arun_idp("admin-tokens", "create", "--name", "  ", database_url=migrated, cwd=tmp_path)
    assert "name" in assert_one_line_failure(empty_name)


async def test_users_list_show_disable_and_reset_mfa(migrated: str, tmp_path: Path, start_app: StartApp) -> None:
    ann = (await aidp_json(
        "users", "create", "--email", "ann@example.com", "--name", "Ann", "--password-stdin",
        database_url=migrated, cwd=tmp_path, stdin=PASSWORD + "\n",
    ))  # fmt: skip
    bob = await aidp_json("users", "create", "--email", "bob@example.com", database_url=migrated, cwd=tmp_path)

    everyone = await aidp_json("users", "list", database_url=migrated, cwd=tmp_path)
    assert {u["email"] for u in everyone} == {"ann@example.com", "bob@example.com"}
    assert all(u["mfa"] == {"enabled": False, "since": None, "backup_codes_left": 0} for u in everyone)
    found = await aidp_json("users", "list", "--email", "ANN@example.com", database_url=migrated, cwd=tmp_path)
    assert [u["id"] for u in found] == [ann["id"]]
    first = await aidp_json("users", "list", "--limit", "1", database_url=migrated, cwd=tmp_path)
    rest = await aidp_json("users", "list", "--after", first[0]["id"], database_url=migrated, cwd=tmp_path)
    assert {u["id"] for u in first + rest} == {ann["id"], bob["id"]}
    bob_shown = await aidp_json("users", "show", "bob@example.com", database_url=migrated, cwd=tmp_path)
    assert bob_shown["id"] == bob["id"]
    assert bob_shown["sessions"] == []  # never signed in

    # Ann signs in and turns on two-step verification in a browser.
    running = await serve(start_app, migrated)
    async with running.client() as browser:
        assert (await submit_login(browser, "ann@example.com", PASSWORD)).status_code == 303
        secret, codes = await enroll(browser, running.idp.clock.now())
        shown = await aidp_json("users", "show", ann["id"], database_url=migrated, cwd=tmp_path)
        assert shown["mfa"]["enabled"] is True
        assert shown["mfa"]["backup_codes_left"] == 8
        printed = (await arun_idp("users", "show", ann["id"], database_url=migrated, cwd=tmp_path)).stdout
        assert secret not in printed
        assert not any(code in printed for code in codes)

        no_reason = await arun_idp("users", "reset-mfa", ann["id"], database_url=migrated, cwd=tmp_path)
        assert no_reason.returncode == 2
        assert "--reason" in no_reason.stderr
        reset = (await aidp_json(
            "users", "reset-mfa", "ann@example.com", "--reason", "passport checked at the desk",
            database_url=migrated, cwd=tmp_path,
        ))  # fmt: skip
        assert reset["id"] == ann["id"]
        assert reset["mfa"] == {"enabled": False, "since": None, "backup_codes_left": 0}
        assert (await browser.get("/account")).status_code == 303  # the session ended

        assert (await submit_login(browser, "ann@example.com", PASSWORD)).status_code == 303
        disabled = await aidp_json("users", "disable", "ann@example.com", database_url=migrated, cwd=tmp_path)
        assert (disabled["id"], disabled["disabled"]) == (ann["id"], True)
        assert (await browser.get("/account")).status_code == 303
    async with running.client() as browser:
        assert (await submit_login(browser, "ann@example.com", PASSWORD)).status_code == 400
        enabled = await aidp_json("users", "disable", ann["id"], "--enable", database_url=migrated, cwd=tmp_path)
        assert enabled["disabled"] is False
        assert (await submit_login(browser, "ann@example.com", PASSWORD)).status_code == 303

    events = await aidp_json("audit", "list", "--type", "admin.mfa_reset", database_url=migrated, cwd=tmp_path)
    assert [(e["actor"], e["user_id"], e["details"]["reason"]) for e in events] == [
        ("cli", ann["id"], "passport checked at the desk")
    ]
    for args in (("users", "show", "nobody@example.com"), ("users", "disable", "no-such-id"),
                 ("users", "reset-mfa", "nobody@example.com", "--reason", "checked")):  # fmt: skip
        assert "no user" in assert_one_line_failure(await arun_idp(*args, database_url=migrated, cwd=tmp_path))
    blank = await arun_idp("users", "reset-mfa", bob["id"], "--reason", "   ", database_url=migrated, cwd=tmp_path)
    assert "reason" in assert_one_line_failure(blank)


async def test_users_show_lists_passkeys_without_key_material(
    migrated: str, tmp_path: Path, start_app: StartApp
) -> None:
    ann = (await aidp_json(
        "users", "create", "--email", "ann@example.com", "--password-stdin",
        database_url=migrated, cwd=tmp_path, stdin=PASSWORD + "\n",
    ))  # fmt: skip
    assert (await aidp_json("users", "show", ann["id"], database_url=migrated, cwd=tmp_path))["passkeys"] == []

    # Ann adds a device-bound passkey and a synced one, and signs in once with the synced one.
    running = await serve(start_app, migrated)
    phone, laptop = SoftAuthenticator(synced=True), SoftAuthenticator()
    async with running.client() as browser:
        assert (await submit_login(browser, "ann@example.com", PASSWORD)).status_code == 303
        assert (await add_passkey(browser, phone, "Phone")).status_code == 200
        assert (await add_passkey(browser, laptop, "Laptop")).status_code == 303
        await sign_out(browser)
        login = await submit_login(browser, "ann@example.com", PASSWORD)
        page = (await browser.get(login.headers["location"])).text
        assert (await use_passkey(browser, page, phone.assertion(request_options_from(page)))).status_code == 303

    printed = (await arun_idp("users", "show", "ann@example.com", database_url=migrated, cwd=tmp_path)).stdout
    shown = json.loads(printed)["passkeys"]
    async with await admin_client(running) as admin:
        api = (await admin.get(f"/admin/api/users/{ann['id']}")).json()["passkeys"]
    # The admin API's fields and values (its times are the same instants, written the API's way).
    assert (
        [set(k) for k in shown]
        == [set(k) for k in api]
        == [{"id", "name", "created_at", "last_used_at", "synced", "backed_up"}] * 2
    )
    assert [(k["id"], k["name"], k["synced"], k["backed_up"]) for k in shown] == [
        (k["id"], k["name"], k["synced"], k["backed_up"]) for k in api
    ]
    # Both were added within the same instant of the test's clock, so their order between them is not fixed.
    assert sorted((k["name"], k["synced"], k["last_used_at"] is not None) for k in shown) == [
        ("Laptop", False, False),
        ("Phone", True, True),
    ]
    for k, a in zip(shown, api, strict=True):
        assert datetime.fromisoformat(k["created_at"]) == datetime.fromisoformat(a["created_at"])
    # No key material: neither the credential ids nor the public keys.
    for key in (phone, laptop):
        assert key.credential_id_b64 not in printed
    async with running.idp.db.transaction() as session:
        keys = (await session.execute(select(Passkey.public_key))).scalars().all()
    assert len(keys) == 2
    assert not any(k in printed for k in keys)


async def test_clients_list_show_rotate_secret_delete(migrated: str, tmp_path: Path, start_app: StartApp) -> None:
    board = (await aidp_json(
        "clients", "create", "--name", "Nordic Jobs", "--redirect-uri", "https://jobs.example/callback",
        "--grant-type", "authorization_code", "--grant-type", "refresh_token", "--grant-type", "client_credentials",
        database_url=migrated, cwd=tmp_path,
    ))  # fmt: skip
    client_id, old_secret = board["client_id"], board["client_secret"]
    other = (await aidp_json("clients", "create", "--name", "Other", "--redirect-uri", "https://o.example/cb",
                     database_url=migrated, cwd=tmp_path))  # fmt: skip

    listed = await aidp_json("clients", "list", database_url=migrated, cwd=tmp_path)
    assert sorted(c["client_id"] for c in listed) == sorted([client_id, other["client_id"]])
    assert all("client_secret" not in c for c in listed)
    first = await aidp_json("clients", "list", "--limit", "1", database_url=migrated, cwd=tmp_path)
    rest = await aidp_json("clients", "list", "--after", first[0]["client_id"], database_url=migrated, cwd=tmp_path)
    assert [c["client_id"] for c in first + rest] == sorted([client_id, other["client_id"]])
    shown = await aidp_json("clients", "show", client_id, database_url=migrated, cwd=tmp_path)
    assert shown == {k: v for k, v in board.items() if k != "client_secret"}

    rotated = await aidp_json("clients", "rotate-secret", client_id, database_url=migrated, cwd=tmp_path)
    assert rotated["client_id"] == client_id
    assert rotated["client_secret"] != old_secret
    running = await serve(start_app, migrated)
    async with running.client() as backend:
        grant = {"grant_type": "client_credentials"}
        assert (await backend.post("/token", data=grant, auth=(client_id, old_secret))).status_code == 401
        issued = await backend.post("/token", data=grant, auth=(client_id, rotated["client_secret"]))
        assert issued.status_code == 200
        access_token = issued.json()["access_token"]

        assert await aidp_json("clients", "delete", client_id, database_url=migrated, cwd=tmp_path) == {
            "deleted": client_id
        }
        # Its tokens died with it.
        introspected = await backend.post(
            "/introspect", data={"token": access_token}, auth=(other["client_id"], other["client_secret"])
        )
        assert introspected.json() == {"active": False}
    for command in ("show", "rotate-secret", "delete"):
        gone = await arun_idp("clients", command, client_id, database_url=migrated, cwd=tmp_path)
        assert "no such client" in assert_one_line_failure(gone)
    events = await aidp_json(
        "audit", "list", "--type", "admin.client_secret_rotated", database_url=migrated, cwd=tmp_path
    )
    assert [(e["actor"], e["details"]) for e in events] == [("cli", {"client_id": client_id})]


async def test_audit_list_filters_newest_first(migrated: str, tmp_path: Path, start_app: StartApp) -> None:
    ann = (await aidp_json(
        "users", "create", "--email", "ann@example.com", "--password-stdin",
        database_url=migrated, cwd=tmp_path, stdin=PASSWORD + "\n",
    ))  # fmt: skip
    running = await serve(start_app, migrated)
    async with running.client() as browser:
        await submit_login(browser, "ann@example.com", "a wrong password")
        await submit_login(browser, "ann@example.com", PASSWORD)
    (await aidp_json("users", "disable", ann["id"], database_url=migrated, cwd=tmp_path))

    events = await aidp_json("audit", "list", database_url=migrated, cwd=tmp_path)
    assert [e["id"] for e in events] == sorted((e["id"] for e in events), reverse=True)
    assert events[0]["type"] == "admin.user_updated"
    assert {"login.failure", "login.success"} <= {e["type"] for e in events}
    anns = await aidp_json("audit", "list", "--user-id", ann["id"], database_url=migrated, cwd=tmp_path)
    assert anns
    assert all(e["user_id"] == ann["id"] for e in anns)
    failures = await aidp_json("audit", "list", "--type", "login.failure", database_url=migrated, cwd=tmp_path)
    assert [e["outcome"] for e in failures] == ["failure"]
    assert (await aidp_json("audit", "list", "--limit", "2", database_url=migrated, cwd=tmp_path)) == events[:2]
    # The app's clock is frozen in the past; the CLI's is the wall clock.
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    recent = await aidp_json("audit", "list", "--since", since, database_url=migrated, cwd=tmp_path)
    assert "admin.user_updated" in {e["type"] for e in recent}
    assert "login.failure" not in {e["type"] for e in recent}
    printed = json.dumps(events)
    assert PASSWORD not in printed
    assert "a wrong password" not in printed

    for bad in ("yesterday", "2026-01-05T09:00:00"):
        result = await arun_idp("audit", "list", "--since", bad, database_url=migrated, cwd=tmp_path)
        assert result.returncode == 2
        assert "--since" in assert_one_line_failure(result)
    assert (await arun_idp("audit", "list", "--limit", "0", database_url=migrated, cwd=tmp_path)).returncode == 2


async def test_clients_create_with_scopes(migrated: str, tmp_path: Path, start_app: StartApp) -> None:
    service = (await aidp_json(
        "clients", "create", "--name", "Jobs API client", "--grant-type", "client_credentials",
        "--scope", "jobs.read", "--scope", "jobs.write jobs.read",
        database_url=migrated, cwd=tmp_path,
    ))  # fmt: skip
    assert service["scope"] == "jobs.read jobs.write"
    assert (await aidp_json("clients", "show", service["client_id"], database_url=migrated, cwd=tmp_path))["scope"] == (
        "jobs.read jobs.write"
    )
    assert [c["scope"] for c in (await aidp_json("clients", "list", database_url=migrated, cwd=tmp_path))] == [
        "jobs.read jobs.write"
    ]
    running = await serve(start_app, migrated)
    async with running.client() as backend:
        auth = (service["client_id"], service["client_secret"])
        issued = await backend.post("/token", data={"grant_type": "client_credentials"}, auth=auth)
        assert issued.json()["scope"] == "jobs.read jobs.write"
        refused = await backend.post(
            "/token", data={"grant_type": "client_credentials", "scope": "jobs.admin"}, auth=auth
        )
        assert refused.json()["error"] == "invalid_scope"

    for bad in ("openid", 'jobs"read'):
        failed = (await arun_idp(
            "clients", "create", "--name", "Bad", "--grant-type", "client_credentials", "--scope", bad,
            database_url=migrated, cwd=tmp_path,
        ))  # fmt: skip
        assert "scope" in assert_one_line_failure(failed)
    assert len(await aidp_json("clients", "list", database_url=migrated, cwd=tmp_path)) == 1
