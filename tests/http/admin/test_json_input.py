"""JSON the admin API cannot store or would read ambiguously: 400/422 through the one reader, nothing written."""

from __future__ import annotations

import pytest

from tests.conftest import Running
from tests.support.admin import API, admin_client, assert_api_error, dump_tables

JSON = {"content-type": "application/json"}
VOLATILE = ("admin_tokens", "ratelimit_hits")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        # A lone surrogate is valid JSON but no valid text: PostgreSQL cannot store it.
        (b'{"email": "ann@example.com", "name": "\\ud800"}', 422),
        (b'{"email": "ann@example.com", "name": "x\\udfff"}', 422),
        (b'{"email": "ann@example.com", "password": "long enough \\ud83d"}', 422),
        # A key given twice: which one counts would be up to the parser.
        (b'{"email": "ann@example.com", "email": "bob@example.com"}', 400),
        (b'{"email": "ann@example.com", "name": "A", "name": "B"}', 400),
    ],
)
async def test_unstorable_or_ambiguous_json_is_refused(running: Running, body: bytes, status: int) -> None:
    async with await admin_client(running) as admin:
        before = await dump_tables(running, skip=VOLATILE)
        response = await admin.post(f"{API}/users", content=body, headers=JSON)
        assert_api_error(response, status, "invalid_request")
        assert await dump_tables(running, skip=VOLATILE) == before


async def test_a_repeated_query_parameter_is_a_400(running: Running) -> None:
    async with await admin_client(running) as admin:
        assert_api_error(await admin.get(f"{API}/users?limit=1&limit=2"), 400, "invalid_request")
        assert_api_error(await admin.get(f"{API}/users?email=%ff"), 400, "invalid_request")
