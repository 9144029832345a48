"""Registering a back-channel logout URI (INTERFACE §2, §5): the admin API field, its rules, discovery."""

from __future__ import annotations

import httpx
import pytest

from idp.errors import InvalidInput
from idp.services.clients import check_backchannel_logout_uri
from tests.conftest import Running
from tests.support.admin import API, admin_client, assert_api_error

JOB_BOARD = {"name": "Nordic Jobs", "redirect_uris": ["https://jobs.example/callback"]}


async def test_the_admin_api_sets_shows_changes_and_removes_the_uri(running: Running) -> None:
    async with await admin_client(running) as admin:
        created = await admin.post(
            f"{API}/clients", json={**JOB_BOARD, "backchannel_logout_uri": "https://jobs.example/bcl?x=1"}
        )
        assert created.status_code == 201, created.text
        client_id = created.json()["client_id"]
        assert created.json()["backchannel_logout_uri"] == "https://jobs.example/bcl?x=1"
        assert (await admin.get(f"{API}/clients/{client_id}")).json()["backchannel_logout_uri"] == (
            "https://jobs.example/bcl?x=1"
        )
        changed = await admin.patch(
            f"{API}/clients/{client_id}", json={"backchannel_logout_uri": "https://j.example/b"}
        )
        assert changed.json()["backchannel_logout_uri"] == "https://j.example/b"
        assert (await admin.patch(f"{API}/clients/{client_id}", json={"name": "N"})).json()[
            "backchannel_logout_uri"
        ] == "https://j.example/b"  # untouched by other changes
        removed = await admin.patch(f"{API}/clients/{client_id}", json={"backchannel_logout_uri": ""})
        assert removed.json()["backchannel_logout_uri"] is None
        listed = (await admin.get(f"{API}/clients")).json()["items"]
        assert listed[0]["backchannel_logout_uri"] is None
        schema = (await admin.get(f"{API}/openapi.json")).json()["components"]["schemas"]
        assert "backchannel_logout_uri" in schema["ClientCreate"]["properties"]
        assert "backchannel_logout_uri" in schema["ClientPatch"]["properties"]


@pytest.mark.parametrize(
    "uri",
    [
        "https://jobs.example/bcl#frag",
        "ftp://jobs.example/bcl",
        "/relative",
        "https:///no-host",
        "https://j.example:99999/",
    ],
)
async def test_a_bad_uri_is_refused_with_a_reason_and_nothing_written(running: Running, uri: str) -> None:
    async with await admin_client(running) as admin:
        response = await admin.post(f"{API}/clients", json={**JOB_BOARD, "backchannel_logout_uri": uri})
        assert_api_error(response, 422)
        assert (await admin.get(f"{API}/clients")).json()["items"] == []


def test_https_is_required_unless_loopback_or_idp_itself_runs_on_http() -> None:
    with pytest.raises(InvalidInput, match="https"):
        check_backchannel_logout_uri("http://jobs.example/bcl", allow_http=False)
    for uri in ("http://127.0.0.1:8001/bcl", "http://[::1]/bcl", "http://localhost:8001/bcl", "https://j.example/"):
        assert check_backchannel_logout_uri(uri, allow_http=False) == uri
    assert check_backchannel_logout_uri("http://jobboard:8001/bcl", allow_http=True) == "http://jobboard:8001/bcl"


async def test_discovery_says_back_channel_logout_with_sid(client: httpx.AsyncClient) -> None:
    metadata = (await client.get("/.well-known/openid-configuration")).json()
    assert metadata["backchannel_logout_supported"] is True
    assert metadata["backchannel_logout_session_supported"] is True
