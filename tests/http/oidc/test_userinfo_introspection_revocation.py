"""UserInfo (OIDC Core §5.3, RFC 6750), introspection (RFC 7662) and revocation (RFC 7009) over HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from idp.clock import FrozenClock
from idp.store.models import User
from tests.conftest import Running
from tests.support.oidc import RegisteredClient, auth_params, make_client, pkce_pair, query_of
from tests.support.pages import make_user
from tests.support.wire import assert_json_error


@pytest.fixture
async def person(running: Running) -> User:
    return await make_user(running.idp, name="Pat")


@pytest.fixture
async def rp(running: Running) -> RegisteredClient:
    return await make_client(running.idp)


@pytest.fixture
async def other(running: Running) -> RegisteredClient:
    return await make_client(running.idp, "Other board")


async def tokens_for(
    browser: httpx.AsyncClient,
    backend: httpx.AsyncClient,
    client: RegisteredClient,
    scope: str = "openid email profile",
) -> dict[str, Any]:
    verifier, challenge = pkce_pair()
    response = await browser.get("/authorize", params=auth_params(client, challenge, scope=scope))
    code = query_of(response.headers["location"])["code"]
    answer = await backend.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": client.redirect_uri,
            "code_verifier": verifier,
        },
        auth=client.basic,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_invalid_token(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.json()["error"] == "invalid_token"
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="invalid_token"' in challenge


# -- userinfo ------------------------------------------------------------------------------------------------


async def test_userinfo_by_get_with_the_header(
    person: User, rp: RegisteredClient, browser: httpx.AsyncClient, backend: httpx.AsyncClient
) -> None:
    tokens = await tokens_for(browser, backend, rp)

    response = await backend.get("/userinfo", headers=bearer(tokens["access_token"]))

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == {"sub": person.id, "email": "person@example.com", "email_verified": False, "name": "Pat"}


async def test_userinfo_by_post_with_the_header(
    person: User, rp: RegisteredClient, browser: httpx.AsyncClient, backend: httpx.AsyncClient
) -> None:
    tokens = await tokens_for(browser, backend, rp)

    response = await backend.post("/userinfo", headers=bearer(tokens["access_token"]))

    assert response.status_code == 200
    assert response.json()["sub"] == person.id


async def test_userinfo_by_post_with_the_token_in_the_body(
    person: User, rp: RegisteredClient, browser: httpx.AsyncClient, backend: httpx.AsyncClient
) -> None:
    tokens = await tokens_for(browser, backend, rp)

    response = await backend.post("/userinfo", data={"access_token": tokens["access_token"]})

    assert response.status_code == 200
    assert response.json()["sub"] == person.id


async def test_userinfo_token_in_header_and_body_is_refused(
    rp: RegisteredClient, browser: httpx.AsyncClient, backend: httpx.AsyncClient
) -> None:
    tokens = await tokens_for(browser, backend, rp)

    response = await backend.post(
        "/userinfo", headers=bearer(tokens["access_token"]), data={"access_token": tokens["access_token"]}
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_userinfo_without_a_token_is_a_bare_401_challenge(
    running: Running, backend: httpx.AsyncClient, method: str
) -> None:
    response = await backend.request(method, "/userinfo")

    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer")
    # RFC 6750 §3.1: no error code when the request carried no credentials at all.
    assert "error=" not in challenge


async def test_userinfo_with_another_scheme_is_refused(backend: httpx.AsyncClient) -> None:
    response = await backend.get("/userinfo", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert response.headers["www-authenticate"].startswith('Bearer realm="idp", error="invalid_request"')


@pytest.mark.parametrize("token", ["no-such-token", "x" * 300, "ey.ey.ey"])
async def test_userinfo_with_an_unknown_token_is_invalid_token(backend: httpx.AsyncClient, token: str) -> None:
    assert_invalid_token(await backend.get("/userinfo", headers=bearer(token)))


async def test_userinfo_with_an_expired_token_is_invalid_token(
    running: Running,
    rp: RegisteredClient,
    browser: httpx.AsyncClient,
    backend: httpx.AsyncClient,
    clock: FrozenClock,
) -> None:
    tokens = await tokens_for(browser, backend, rp)
    clock.advance(running.idp.settings.access_token_lifetime_seconds - 1)
    assert (await backend.get("/userinfo", headers=bearer(tokens["access_token"]))).status_code == 200

    clock.advance(2)

    assert_invalid_token(await backend.get("/userinfo", headers=bearer(tokens["access_token"])))


async def test_userinfo_with_a_revoked_token_is_invalid_token(
    rp: RegisteredClient, browser: httpx.AsyncClient, backend: httpx.AsyncClient
) -> None:
    tokens = await tokens_for(browser, backend, rp)
    revoked = await backend.post("/revoke", data={"token": tokens["access_token"]}, auth=rp.basic)
    assert revoked.status_code == 200

    assert_invalid_token(await backend.get("/userinfo", headers=bearer(tokens["access_token"])))


async def test_userinfo_refuses_a_refresh_token(
    rp: RegisteredClient, browser: httpx.AsyncClient, backend: httpx.AsyncClient
) -> None:
    tokens = await tokens_for(browser, backend, rp)
    assert_invalid_token(await backend.get("/userinfo", headers=bearer(tokens["refresh_token"])))


@pytest.mark.parametrize(
    ("scope", "claims"),
    [
        ("openid", {"sub"}),
        ("openid email", {"sub", "email", "email_verified"}),
        ("openid profile", {"sub", "name"}),
        ("openid email profile", {"sub", "email", "email_verified", "name"}),
    ],
)
async def test_scopes_decide_the_claims(
    person: User,
    rp: RegisteredClient,
    browser: httpx.AsyncClient,
    backend: httpx.AsyncClient,
    scope: str,
    claims: set[str],
) -> None:
    tokens = await tokens_for(browser, backend, rp, scope=scope)

    body = (await backend.get("/userinfo", headers=bearer(tokens["access_token"]))).json()

    assert set(body) == claims
    assert body["sub"] == person.id


# -- introspection ---------------------------------------------------------------------------------------


async def test_introspection_of_an_access_token(
    person: User, rp: RegisteredClient, browser: httpx.AsyncClient, backend: httpx.AsyncClient
) -> None:
    tokens = await tokens_for(browser, backend, rp)

    response = await backend.post("/introspect", data={"token": tokens["access_token"]}, auth=rp.basic)

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["active"] is True
    assert body["sub"] == person.id
    assert body["client_id"] == rp.client_id
    assert body["scope"] == "openid email profile"
    assert body["iss"] == "http://testserver"
    assert body["exp"] > body["iat"]


async def test_introspection_with_client_secret_post(
    rp: RegisteredClient, browser: httpx.AsyncClient, backend: httpx.AsyncClient
) -> None:
    tokens = await tokens_for(browser, backend, rp)
    assert rp.secret is not None

    response = await backend.post(
        "/introspect",
        data={"token": tokens["access_token"], "client_id": rp.client_id, "client_secret": rp.secret},
    )

    assert response.json()["active"] is True


async def test_introspection_requires_client_authentication(
    rp: RegisteredClient, browser: httpx.AsyncClient, backend: httpx.AsyncClient
) -> None:
    tokens = await tokens_for(browser, backend, rp)

    anonymous = await backend.post("/introspect", data={"token": tokens["access_token"]})
    id_only = await backend.post("/introspect", data={"token": tokens["access_token"], "client_id": rp.client_id})
    wrong = await backend.post("/introspect", data={"token": tokens["access_token"]}, auth=(rp.client_id, "wrong"))

    assert_json_error(anonymous, "invalid_client", 401)
    assert_json_error(id_only, "invalid_client", 401)
    assert_json_error(wrong, "invalid_client", 401)
    assert wrong.headers["www-authenticate"].startswith("Basic")


async def test_public_clients_may_not_introspect(
    running: Running, rp: RegisteredClient, browser: httpx.AsyncClient, backend: httpx.AsyncClient
) -> None:
    app = await make_client(running.idp, "Mobile", public=True, redirect_uris=["com.jobs.app:/cb"])
    tokens = await tokens_for(browser, backend, rp)

    response = await backend.post("/introspect", data={"token": tokens["access_token"], "client_id": app.client_id})

    assert_json_error(response, "invalid_client", 401)


async def test_another_clients_token_is_inactive(
    rp: RegisteredClient, other: RegisteredClient, browser: httpx.AsyncClient, backend: httpx.AsyncClient
) -> None:
    tokens = await tokens_for(browser, backend, rp)

    for token in (tokens["access_token"], tokens["refresh_token"]):
        response = await backend.post("/introspect", data={"token": token}, auth=other.basic)
        assert response.status_code == 200
        assert response.json() == {"active": False}


@pytest.mark.parametrize("token", ["no-such-token", "x" * 150])
async def test_unknown_token_is_inactive(rp: RegisteredClient, backend: httpx.AsyncClient, token: str) -> None:
    response = await backend.post("/introspect", data={"token": token}, auth=rp.basic)
    assert response.status_code == 200
    assert response.json() == {"active": False}


async def test_introspection_without_a_token_is_invalid_request(
    rp: RegisteredClient, backend: httpx.AsyncClient
) -> None:
    assert_json_error(await backend.post("/introspect", data={}, auth=rp.basic), "invalid_request")


async def test_expired_access_token_is_inactive(
    running: Running,
    rp: RegisteredClient,
    browser: httpx.AsyncClient,
    backend: httpx.AsyncClient,
    clock: FrozenClock,
) -> None:
    tokens = await tokens_for(browser, backend, rp)
    clock.advance(running.idp.settings.access_token_lifetime_seconds + 1)

    response = await backend.post("/introspect", data={"token": tokens["access_token"]}, auth=rp.basic)

    assert response.json() == {"active": False}


async def test_refresh_tokens_are_active_until_used(
    rp: RegisteredClient, browser: httpx.AsyncClient, backend: httpx.AsyncClient
) -> None:
    tokens = await tokens_for(browser, backend, rp)
    before = await backend.post("/introspect", data={"token": tokens["refresh_token"]}, auth=rp.basic)
    assert before.json()["active"] is True

    refreshed = await backend.post(
        "/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}, auth=rp.basic
    )
    assert refreshed.status_code == 200
    after = await backend.post("/introspect", data={"token": tokens["refresh_token"]}, auth=rp.basic)
    successor = await backend.post("/introspect", data={"token": refreshed.json()["refresh_token"]}, auth=rp.basic)

    assert after.json() == {"active": False}
    assert successor.json()["active"] is True


# -- revocation ----------------------------------------------------------------------------------------------


async def test_revoking_an_access_token_ends_it(
    rp: RegisteredClient, browser: httpx.AsyncClient, backend: httpx.AsyncClient
) -> None:
    tokens = await tokens_for(browser, backend, rp)

    response = await backend.post(
        "/revoke", data={"token": tokens["access_token"], "token_type_hint": "access_token"}, auth=rp.basic
    )

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert_invalid_token(await backend.get("/userinfo", headers=bearer(tokens["access_token"])))
    introspected = await backend.post("/introspect", data={"token": tokens["access_token"]}, auth=rp.basic)
    assert introspected.json() == {"active": False}


async def test_revoking_a_refresh_token_ends_its_family(
    rp: RegisteredClient, browser: httpx.AsyncClient, backend: httpx.AsyncClient
) -> None:
    tokens = await tokens_for(browser, backend, rp)
    refreshed = await backend.post(
        "/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}, auth=rp.basic
    )
    newer = refreshed.json()

    response = await backend.post(
        "/revoke", data={"token": newer["refresh_token"], "token_type_hint": "refresh_token"}, auth=rp.basic
    )

    assert response.status_code == 200
    for access in (tokens["access_token"], newer["access_token"]):
        assert_invalid_token(await backend.get("/userinfo", headers=bearer(access)))
    again = await backend.post(
        "/token", data={"grant_type": "refresh_token", "refresh_token": newer["refresh_token"]}, auth=rp.basic
    )
    assert_json_error(again, "invalid_grant")


async def test_revoking_with_the_wrong_hint_still_revokes(
    rp: RegisteredClient, browser: httpx.AsyncClient, backend: httpx.AsyncClient
) -> None:
    tokens = await tokens_for(browser, backend, rp)

    response = await backend.post(
        "/revoke", data={"token": tokens["access_token"], "token_type_hint": "refresh_token"}, auth=rp.basic
    )

    assert response.status_code == 200
    assert_invalid_token(await backend.get("/userinfo", headers=bearer(tokens["access_token"])))


async def test_revoking_an_unknown_token_is_200(rp: RegisteredClient, backend: httpx.AsyncClient) -> None:
    response = await backend.post("/revoke", data={"token": "no-such-token"}, auth=rp.basic)
    assert response.status_code == 200


async def test_revoking_another_clients_token_is_200_and_changes_nothing(
    rp: RegisteredClient, other: RegisteredClient, browser: httpx.AsyncClient, backend: httpx.AsyncClient
) -> None:
    tokens = await tokens_for(browser, backend, rp)

    access = await backend.post("/revoke", data={"token": tokens["access_token"]}, auth=other.basic)
    refresh = await backend.post("/revoke", data={"token": tokens["refresh_token"]}, auth=other.basic)

    assert access.status_code == 200
    assert refresh.status_code == 200
    assert (await backend.get("/userinfo", headers=bearer(tokens["access_token"]))).status_code == 200
    refreshed = await backend.post(
        "/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}, auth=rp.basic
    )
    assert refreshed.status_code == 200


async def test_bad_token_type_hint_is_unsupported_token_type(
    rp: RegisteredClient, browser: httpx.AsyncClient, backend: httpx.AsyncClient
) -> None:
    tokens = await tokens_for(browser, backend, rp)

    response = await backend.post(
        "/revoke", data={"token": tokens["access_token"], "token_type_hint": "id_token"}, auth=rp.basic
    )

    assert_json_error(response, "unsupported_token_type")
    assert (await backend.get("/userinfo", headers=bearer(tokens["access_token"]))).status_code == 200


async def test_revocation_requires_client_authentication(
    rp: RegisteredClient, browser: httpx.AsyncClient, backend: httpx.AsyncClient
) -> None:
    tokens = await tokens_for(browser, backend, rp)

    anonymous = await backend.post("/revoke", data={"token": tokens["access_token"]})
    wrong = await backend.post("/revoke", data={"token": tokens["access_token"]}, auth=(rp.client_id, "wrong"))

    assert_json_error(anonymous, "invalid_client", 401)
    assert_json_error(wrong, "invalid_client", 401)
    assert (await backend.get("/userinfo", headers=bearer(tokens["access_token"]))).status_code == 200
