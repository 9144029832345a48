"""`POST /admin/api/users/import` (the same service as `idp users import`): results per line, merging by normalised
email, re-runs, dry runs, an interrupted import resumed, malformed lines refused one by one with nothing written
for them, and `GET /admin/api/users?external_id=`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pyotp
import pytest

from tests.conftest import Running
from tests.support.admin import admin_client, assert_api_error
from tests.support.importing import JSONL, counts, events, import_lines, jsonl, legacy_of, statuses, user_row
from tests.support.legacy import PRODUCERS
from tests.support.mfa import authenticator_added_elsewhere
from tests.support.oidc import make_client
from tests.support.pages import PASSWORD, make_user, submit_login


def board_file(client_id: str, count: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "email": f"person{i}@example.com",
            "name": f"Person {i}",
            "email_verified": True,
            "password_hash": PRODUCERS["bcrypt-2b"](f"password {i}"),
            "external_id": {"client_id": client_id, "id": str(1000 + i)},
        }
        for i in range(start, start + count)
    ]


async def test_created_then_rerun_unchanged_and_audited(running: Running) -> None:
    board = await make_client(running.idp, "Board")
    records = board_file(board.client_id, 3)
    async with await admin_client(running) as admin:
        first = await import_lines(admin, jsonl(*records))
        before = await counts(running)
        again = await import_lines(admin, jsonl(*records))
    assert statuses(first) == ["created"] * 3
    assert first["summary"] == {
        "lines": 3,
        "created": 3,
        "merged": 0,
        "unchanged": 0,
        "error": 0,
        "conflicts": 0,
        "dry_run": False,
    }
    assert statuses(again) == ["unchanged"] * 3
    assert [r["id"] for r in again["results"]] == [r["id"] for r in first["results"]]
    assert await counts(running) == before
    assert before["users"] == 3
    assert before["external_ids"] == 3
    assert before["legacy_password_hashes"] == 3
    # The board had verified these addresses: the accounts start verified (email_verified in ID tokens).
    assert all([(await user_row(running, f"person{i}@example.com")).email_verified for i in range(3)])
    created = await events(running, "import.user_created")
    assert sorted(e.user_id for e in created) == sorted(r["id"] for r in first["results"])
    completed = await events(running, "import.completed")
    assert [json.loads(e.details)["created"] for e in completed] == [3, 0]
    every = str([(e.type, e.details) for e in await events(running, "")])
    assert "$2b$" not in every


async def test_merge_by_normalised_email_adds_the_second_boards_id_and_hash(running: Running) -> None:
    a, b = await make_client(running.idp, "A"), await make_client(running.idp, "B")
    secret = pyotp.random_base32()
    async with await admin_client(running) as admin:
        await import_lines(
            admin,
            jsonl(
                {
                    "email": "Ｊｏ@example.com",  # fullwidth: NFKC makes it jo@example.com
                    "name": "Jo",
                    "password_hash": PRODUCERS["phpass-P"]("a"),
                    "totp_secret": secret,
                    "external_id": {"client_id": a.client_id, "id": "7"},
                }
            ),
        )
        second = await import_lines(
            admin,
            jsonl(
                {
                    "email": "JO@EXAMPLE.COM",
                    "name": "Josephine",
                    "password_hash": PRODUCERS["scrypt"]("b"),
                    "totp_secret": secret,
                    "external_id": {"client_id": b.client_id, "id": 7},
                }
            ),
        )
        conflicting = await import_lines(
            admin, jsonl({"email": "jo@example.com", "totp_secret": pyotp.random_base32()})
        )
        found_a = (await admin.get("/admin/api/users", params={"external_id": "7"})).json()
    assert statuses(second) == ["merged"]
    user = await user_row(running, "jo@example.com")
    assert user.name == "Jo"  # a name already set is not replaced
    assert len(await legacy_of(running, user.id)) == 2
    assert conflicting["results"][0]["status"] == "unchanged"
    assert conflicting["results"][0]["conflicts"] == ["totp_secret"]
    assert conflicting["summary"]["conflicts"] == 1
    assert [e.user_id for e in await events(running, "import.conflict")] == [user.id]
    assert [u["id"] for u in found_a["items"]] == [user.id]
    assert found_a["items"][0]["mfa"]["enabled"] is True
    assert (await counts(running))["totp_credentials"] == 1


async def test_nothing_set_at_idp_is_overwritten(running: Running, client: Any) -> None:
    board = await make_client(running.idp)
    user = await make_user(running.idp, "here@example.com")
    secret = await authenticator_added_elsewhere(running, user.id, running.idp.clock.now())
    async with await admin_client(running) as admin:
        result = await import_lines(
            admin,
            jsonl(
                {
                    "email": "here@example.com",
                    "password_hash": PRODUCERS["django"]("board password"),
                    "totp_secret": pyotp.random_base32(),
                    "external_id": {"client_id": board.client_id, "id": "h1"},
                },
                {"email": "here@example.com", "totp_secret": secret},
            ),
        )
    assert result["results"][0]["status"] == "merged"  # the external id is new
    assert result["results"][0]["conflicts"] == ["totp_secret"]
    assert result["results"][1]["status"] == "unchanged"
    assert await legacy_of(running, user.id) == []
    assert (await submit_login(client, "here@example.com", "board password")).status_code == 400
    assert (await submit_login(client, "here@example.com", PASSWORD)).status_code == 303


async def test_dry_run_reports_and_writes_nothing(running: Running) -> None:
    board = await make_client(running.idp)
    records = board_file(board.client_id, 2)
    before = await counts(running)
    async with await admin_client(running) as admin:
        result = await import_lines(admin, jsonl(*records, records[0]), dry_run=True)
    assert statuses(result) == ["created", "created", "unchanged"]
    assert result["summary"]["dry_run"] is True
    assert await counts(running) == before
    assert await events(running, "import.") == []


MALFORMED: dict[str, tuple[str, str]] = {
    "bad json": ('{"email": "x@example.com",', "not valid JSON"),
    "not an object": ('["x@example.com"]', "JSON object"),
    "bad email": ('{"email": "no-at-sign.example.com"}', "email is not a valid address"),
    "no email": ('{"name": "Nobody"}', "email is required"),
    "unknown hash": (
        '{"email": "u@example.com", "password_hash": "md5:5f4dcc3b5aa765d61d8327deb882cf99"}',
        "no supported format",
    ),
    "oversized name": (json.dumps({"email": "n@example.com", "name": "n" * 201}), "name must be at most 200"),
    "oversized external id": (
        json.dumps({"email": "e@example.com", "external_id": {"client_id": "c", "id": "9" * 256}}),
        "external_id.id must be 1 to 255",
    ),
    "oversized hash": (json.dumps({"email": "h@example.com", "password_hash": "$2b$" + "a" * 2000}), "at most 1024"),
    "huge line": (json.dumps({"email": "big@example.com", "name": "x" * 100_000}), "longer than 16384 bytes"),
    "unknown field": ('{"email": "f@example.com", "role": "admin"}', "unknown field 'role'"),
    "repeated field": ('{"email": "r@example.com", "email": "s@example.com"}', "given twice"),
    "NUL in name": ('{"email": "z@example.com", "name": "a\\u0000b"}', "NUL"),
    "lone surrogate": ('{"email": "s@example.com", "name": "\\ud800"}', "surrogate"),
    "bad totp": ('{"email": "t@example.com", "totp_secret": "not base32 at all!"}', "totp_secret"),
    "unknown client": (
        '{"email": "c@example.com", "external_id": {"client_id": "nope", "id": "1"}}',
        "no registered client",
    ),
    "verified not bool": ('{"email": "v@example.com", "email_verified": "yes"}', "email_verified"),
}


async def test_malformed_lines_each_get_a_reason_and_nothing_is_written_for_them(running: Running) -> None:
    board = await make_client(running.idp)
    good = board_file(board.client_id, 2)
    names = sorted(MALFORMED)
    body = jsonl(good[0], *(MALFORMED[n][0] for n in names), good[1]) + b"\n   \n"
    before = await counts(running)
    async with await admin_client(running) as admin:
        result = await import_lines(admin, body)
    results = result["results"]
    assert results[0]["status"] == "created"
    assert results[-1]["status"] == "created"
    for name, item in zip(names, results[1:-1], strict=True):
        assert item["status"] == "error", name
        assert MALFORMED[name][1] in item["reason"], (name, item)
        assert "5f4dcc3b" not in item["reason"]
        assert item["id"] is None
    assert result["summary"]["error"] == len(names)
    after = await counts(running)
    assert after["users"] == before["users"] + 2
    assert after["legacy_password_hashes"] == before["legacy_password_hashes"] + 2


async def test_an_external_id_of_another_account_is_refused(running: Running) -> None:
    board = await make_client(running.idp)
    async with await admin_client(running) as admin:
        result = await import_lines(
            admin,
            jsonl(
                {"email": "one@example.com", "external_id": {"client_id": board.client_id, "id": "same"}},
                {"email": "two@example.com", "external_id": {"client_id": board.client_id, "id": "same"}},
            ),
        )
    assert statuses(result) == ["created", "error"]
    assert "another account" in result["results"][1]["reason"]
    assert (await counts(running))["users"] == 1


class Interrupted(Exception):
    pass


async def test_an_interrupted_import_resumes_where_it_stopped(running: Running) -> None:
    board = await make_client(running.idp)
    records = board_file(board.client_id, 7)
    body = jsonl(*records)
    cut = body.index(b"\n", len(body) // 2) + 1  # five lines and a bit

    async def dying() -> AsyncIterator[bytes]:
        yield body[:cut]
        yield body[cut : cut + 20]  # half a line, then the connection drops
        raise Interrupted

    seen: list[dict[str, Any]] = []

    async def consume() -> None:
        async for item in running.idp.importer.run(dying(), actor="test", batch_lines=2):
            seen.append(item)

    with pytest.raises(Interrupted):
        await consume()
    written = await counts(running)
    # Whole batches only: the lines answered were written, the rest were not begun.
    assert written["users"] == len(seen)
    assert 0 < len(seen) < 7
    assert written["external_ids"] == written["legacy_password_hashes"] == written["users"]

    async def whole() -> AsyncIterator[bytes]:
        yield body

    results = [item async for item in running.idp.importer.run(whole(), actor="test", batch_lines=2)]
    assert [r["status"] for r in results[:-1]] == ["unchanged"] * len(seen) + ["created"] * (7 - len(seen))
    assert (await counts(running))["users"] == 7


async def test_wrong_content_type_empty_body_and_no_token(running: Running) -> None:
    async with await admin_client(running) as admin:
        assert_api_error(
            await admin.post("/admin/api/users/import", content=b"{}", headers={"Content-Type": "text/csv"}), 415
        )
        assert_api_error(await admin.post("/admin/api/users/import", content=b"\n", headers=JSONL), 400)
        assert_api_error(await admin.post("/admin/api/users/import?dry_run=maybe", content=b"{}\n", headers=JSONL), 422)
        document = (await admin.get("/admin/api/openapi.json")).json()
    async with running.client() as anonymous:
        assert_api_error(await anonymous.post("/admin/api/users/import", content=b"{}\n", headers=JSONL), 401)
    operation = document["paths"]["/admin/api/users/import"]["post"]
    assert "application/jsonl" in operation["requestBody"]["content"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/ImportOut")
    assert any(p["name"] == "external_id" for p in document["paths"]["/admin/api/users"]["get"]["parameters"])
