"""#10.9, #10.17: look-alike and over-long addresses through the admin API, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.conftest import Running
from tests.support.admin import API, admin_client, assert_api_error
from tests.support.rows import row_counts

PASSWORD = "a fine long password"


async def test_an_address_longer_than_320_once_folded_is_a_422(running: Running) -> None:
    """#10.9: on PostgreSQL this was a 500 (the folded form did not fit the column)."""
    email = "\u0130" * 64 + "@" + "a" * 250 + ".com"
    async with await admin_client(running) as admin:
        before = await row_counts(running)
        response = await admin.post(f"{API}/users", json={"email": email, "password": PASSWORD})
        assert_api_error(response, 422, "invalid_request")
        assert (await row_counts(running))["users"] == before["users"]

        search = await admin.get(f"{API}/users", params={"email": "\u0130" * 100 + "@" + "a" * 200 + ".com"})
        assert search.status_code == 200
        assert search.json()["items"] == []


@pytest.mark.parametrize(
    "look_alike",
    ["\u212aim@example.com", "ｋｉｍ@example.com", "KIM@example.com", "kim@ｅｘａｍｐｌｅ.com"],
)
async def test_a_look_alike_of_a_taken_address_is_a_conflict(running: Running, look_alike: str) -> None:
    async with await admin_client(running) as admin:
        assert (await admin.post(f"{API}/users", json={"email": "kim@example.com"})).status_code == 201
        response = await admin.post(f"{API}/users", json={"email": look_alike})
        assert_api_error(response, 409, "conflict")


async def test_the_real_address_is_not_taken_by_a_look_alike_created_first(running: Running) -> None:
    """A Kelvin-sign 'kim' is the same address as 'kim': the second comes back as a conflict, not a second account."""
    async with await admin_client(running) as admin:
        assert (await admin.post(f"{API}/users", json={"email": "\u212aim@example.com"})).status_code == 201
        assert_api_error(await admin.post(f"{API}/users", json={"email": "kim@example.com"}), 409)
        found = await admin.get(f"{API}/users", params={"email": "kim@example.com"})
        assert [u["email"] for u in found.json()["items"]] == ["\u212aim@example.com"]


@pytest.mark.parametrize(
    "email",
    ["k\u200bim@example.com", "ki\u00adm@example.com", "kim\u2028@example.com", "ki\u00a0m@example.com"],
)
async def test_invisible_characters_are_refused(running: Running, email: str) -> None:
    async with await admin_client(running) as admin:
        before = await row_counts(running)
        assert_api_error(await admin.post(f"{API}/users", json={"email": email}), 422, "invalid_request")
        assert (await row_counts(running))["users"] == before["users"]


@pytest.mark.parametrize("query", ["KIM@EXAMPLE.COM", "ｋｉｍ@example.com", "\u212aim@example.com"])
async def test_search_finds_the_account_by_any_look_alike(running: Running, query: str) -> None:
    async with await admin_client(running) as admin:
        assert (await admin.post(f"{API}/users", json={"email": "Kim@example.com"})).status_code == 201
        found = await admin.get(f"{API}/users", params={"email": query})
        assert [u["email"] for u in found.json()["items"]] == ["Kim@example.com"]
