"""Token endpoint errors (RFC 6749 §5.2 JSON), client authentication (§2.3.1), codes, refresh, client_credentials."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from urllib.parse import quote_plus, urlencode

import httpx
import pytest
from sqlalchemy import func, select, update

from idp.auth.tokens import sha256_hex
from idp.clock import FrozenClock
from idp.store.models import Client, Token
from tests.conftest import Running
from tests.support.oidc import RegisteredClient, auth_params, make_client, pkce_pair, query_of
from tests.support.wire import assert_json_error

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
async def rp(running: Running) -> RegisteredClient:
    return await make_client(running.idp, redirect_uris=["https://jobs.example/callback", "https://jobs.example/other"])


async def get_code(browser: httpx.AsyncClient, client: RegisteredClient, challenge: str | None = None) -> str:
    response = await browser.get("/authorize", params=auth_params(client, challenge))
    assert response.status_code == 303, response.text
    return query_of(response.headers["location"])["code"]


def basic(client_id: str, secret: str) -> dict[str, str]:
    """RFC 6749 §2.3.1: form-urlencode each part, then base64 of id:secret."""
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def code_form(code: str, verifier: str | None = None, redirect_uri: str = "https://jobs.example/callback") -> dict:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if verifier is not None:
        form["code_verifier"] = verifier
    return form


async def redeem(
    backend: httpx.AsyncClient, browser: httpx.AsyncClient, rp: RegisteredClient, scope: str = "openid email"
) -> dict[str, str]:
    """A fresh code redeemed: the token response."""
    verifier, challenge = pkce_pair()
    response = await browser.get("/authorize", params=auth_params(rp, challenge, scope=scope))
    code = query_of(response.headers["location"])["code"]
    tokens = await backend.post("/token", data=code_form(code, verifier), auth=rp.basic)
    assert tokens.status_code == 200, tokens.text
    return tokens.json()  # type: ignore[no-any-return]


# -- the request itself ---------------------------------------------------------------------------------


async def test_missing_grant_type_is_invalid_request(rp: RegisteredClient, backend: httpx.AsyncClient) -> None:
    response = await backend.post("/token", data={"code": "x"}, auth=rp.basic)
    assert_json_error(response, "invalid_request")


@pytest.mark.parametrize("grant_type", ["password", "implicit", "urn:ietf:params:oauth:grant-type:device_code"])
async def test_unknown_grant_type_is_unsupported(
    rp: RegisteredClient, backend: httpx.AsyncClient, grant_type: str
) -> None:
    response = await backend.post("/token", data={"grant_type": grant_type}, auth=rp.basic)
    assert_json_error(response, "unsupported_grant_type")


async def test_repeated_parameters_are_invalid_request(
    rp: RegisteredClient, backend: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    code = await get_code(browser, rp)
    body = urlencode(code_form(code)) + "&" + urlencode({"code": code})

    response = await backend.post("/token", content=body, headers=FORM, auth=rp.basic)

    assert_json_error(response, "invalid_request")
    # The code was not touched: it still works.
    assert (await backend.post("/token", data=code_form(code), auth=rp.basic)).status_code == 200


async def test_repeated_grant_type_is_invalid_request(rp: RegisteredClient, backend: httpx.AsyncClient) -> None:
    body = "grant_type=client_credentials&grant_type=client_credentials"
    response = await backend.post("/token", content=body, headers=FORM, auth=rp.basic)
    assert_json_error(response, "invalid_request")


async def test_not_a_form_is_invalid_request(rp: RegisteredClient, backend: httpx.AsyncClient) -> None:
    response = await backend.post("/token", json={"grant_type": "client_credentials"}, auth=rp.basic)
    assert_json_error(response, "invalid_request")


async def test_non_utf8_form_is_invalid_request(rp: RegisteredClient, backend: httpx.AsyncClient) -> None:
    response = await backend.post("/token", content="grant_type=%ff", headers=FORM, auth=rp.basic)
    assert_json_error(response, "invalid_request")


async def test_oversized_body_is_413_not_500(rp: RegisteredClient, backend: httpx.AsyncClient) -> None:
    body = "grant_type=authorization_code&code=" + "a" * (70 * 1024)

    response = await backend.post("/token", content=body, headers=FORM, auth=rp.basic)

    assert response.status_code == 413


async def test_oversized_chunked_body_is_413_not_500(rp: RegisteredClient, backend: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"grant_type=authorization_code&code="
        for _ in range(80):
            yield b"a" * 1024

    response = await backend.post("/token", content=chunks(), headers=FORM, auth=rp.basic)

    assert "content-length" not in response.request.headers
    assert response.status_code == 413


async def test_over_long_field_is_invalid_request(rp: RegisteredClient, backend: httpx.AsyncClient) -> None:
    response = await backend.post(
        "/token", data={"grant_type": "authorization_code", "code": "a" * 5000}, auth=rp.basic
    )
    assert_json_error(response, "invalid_request")


# -- client authentication ----------------------------------------------------------------------------


async def test_wrong_secret_with_basic_is_401_with_a_basic_challenge(
    rp: RegisteredClient, backend: httpx.AsyncClient
) -> None:
    response = await backend.post(
        "/token", data={"grant_type": "refresh_token", "refresh_token": "x"}, auth=(rp.client_id, "wrong")
    )

    assert_json_error(response, "invalid_client", 401)
    assert response.headers["www-authenticate"].startswith("Basic")


async def test_unknown_client_with_basic_is_401(backend: httpx.AsyncClient, rp: RegisteredClient) -> None:
    response = await backend.post(
        "/token", data={"grant_type": "refresh_token", "refresh_token": "x"}, auth=("nobody", "secret")
    )

    assert_json_error(response, "invalid_client", 401)
    assert response.headers["www-authenticate"].startswith("Basic")


async def test_wrong_secret_with_client_secret_post_is_401(rp: RegisteredClient, backend: httpx.AsyncClient) -> None:
    response = await backend.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": "x", "client_id": rp.client_id, "client_secret": "no"},
    )
    assert_json_error(response, "invalid_client", 401)


async def test_client_secret_post_works(
    rp: RegisteredClient, backend: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    code = await get_code(browser, rp)
    assert rp.secret is not None

    response = await backend.post(
        "/token", data={**code_form(code), "client_id": rp.client_id, "client_secret": rp.secret}
    )

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"


async def test_confidential_client_without_credentials_is_401(
    rp: RegisteredClient, backend: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    code = await get_code(browser, rp)

    no_secret = await backend.post("/token", data={**code_form(code), "client_id": rp.client_id})
    nothing = await backend.post("/token", data=code_form(code))

    assert_json_error(no_secret, "invalid_client", 401)
    assert_json_error(nothing, "invalid_client", 401)


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("Basic !!!not-base64!!!", id="not-base64"),
        pytest.param("Basic " + base64.b64encode(b"no-colon-here").decode(), id="no-colon"),
        pytest.param("Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(), id="not-utf8"),
        pytest.param("Basic", id="empty"),
        pytest.param("Basic ", id="blank"),
        pytest.param("Bearer abc.def.ghi", id="bearer"),
        pytest.param("Digest username=x", id="digest"),
        pytest.param("Basic " + base64.b64encode(b":").decode(), id="empty-id-and-secret"),
    ],
)
async def test_malformed_authorization_header_is_401_invalid_client(
    rp: RegisteredClient, backend: httpx.AsyncClient, header: str
) -> None:
    response = await backend.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": "x"},
        headers={"Authorization": header},
    )
    assert_json_error(response, "invalid_client", 401)


@pytest.mark.parametrize("raw", [b"a%00b:secret", b"a\x00b:secret"])
async def test_nul_in_the_basic_client_id_is_401_not_a_500(backend: httpx.AsyncClient, raw: bytes) -> None:
    header = "Basic " + base64.b64encode(raw).decode()
    response = await backend.post(
        "/token", data={"grant_type": "client_credentials"}, headers={"Authorization": header}
    )
    assert_json_error(response, "invalid_client", 401)


async def special_client(running: Running, client_id: str, secret: str) -> None:
    """A client_credentials client whose id and secret hold characters that must be form-urlencoded."""
    registered = await make_client(running.idp, "Back end", redirect_uris=[], grant_types=["client_credentials"])
    async with running.idp.db.transaction() as session:
        await session.execute(
            update(Client)
            .where(Client.client_id == registered.client_id)
            .values(client_id=client_id, secret_hash=sha256_hex(secret))
        )


async def test_basic_credentials_are_form_urldecoded(running: Running, backend: httpx.AsyncClient) -> None:
    client_id, secret = "jobs board:1/é?&=", "p@ss w+rd:%41/ø="
    await special_client(running, client_id, secret)

    response = await backend.post("/token", data={"grant_type": "client_credentials"}, headers=basic(client_id, secret))

    assert response.status_code == 200, response.text


async def test_basic_plus_decodes_to_a_space(running: Running, backend: httpx.AsyncClient) -> None:
    await special_client(running, "jobs board", "a b+c")
    # Built by hand: a space is "+", a literal plus is "%2B".
    header = "Basic " + base64.b64encode(b"jobs+board:a+b%2Bc").decode()

    good = await backend.post("/token", data={"grant_type": "client_credentials"}, headers={"Authorization": header})
    literal = base64.b64encode(b"jobs board:a b+c").decode()
    unencoded = await backend.post(
        "/token", data={"grant_type": "client_credentials"}, headers={"Authorization": "Basic " + literal}
    )

    assert good.status_code == 200, good.text
    # Not encoded, the "+" of the secret reads as a space: the secret is wrong.
    assert_json_error(unencoded, "invalid_client", 401)


async def test_basic_and_post_credentials_together_are_refused(
    rp: RegisteredClient, backend: httpx.AsyncClient
) -> None:
    assert rp.secret is not None
    response = await backend.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": "x", "client_secret": rp.secret},
        auth=rp.basic,
    )
    assert_json_error(response, "invalid_request")


async def test_public_client_sending_a_secret_is_401(running: Running, backend: httpx.AsyncClient) -> None:
    app = await make_client(running.idp, "Mobile", public=True, redirect_uris=["com.jobs.app:/cb"])
    response = await backend.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": "x", "client_id": app.client_id, "client_secret": "s"},
    )
    assert_json_error(response, "invalid_client", 401)


async def test_grant_the_client_is_not_registered_for_is_unauthorized_client(
    running: Running, rp: RegisteredClient, backend: httpx.AsyncClient
) -> None:
    code_only = await make_client(running.idp, "Code only", grant_types=["authorization_code"])

    credentials = await backend.post("/token", data={"grant_type": "client_credentials"}, auth=rp.basic)
    refresh = await backend.post(
        "/token", data={"grant_type": "refresh_token", "refresh_token": "x"}, auth=code_only.basic
    )

    assert_json_error(credentials, "unauthorized_client")
    assert_json_error(refresh, "unauthorized_client")


# -- authorization codes ---------------------------------------------------------------------------------


async def test_code_replay_is_invalid_grant_and_revokes_what_the_first_use_issued(
    rp: RegisteredClient, backend: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    verifier, challenge = pkce_pair()
    code = await get_code(browser, rp, challenge)
    first = await backend.post("/token", data=code_form(code, verifier), auth=rp.basic)
    assert first.status_code == 200
    tokens = first.json()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await backend.get("/userinfo", headers=bearer)).status_code == 200

    replay = await backend.post("/token", data=code_form(code, verifier), auth=rp.basic)

    assert_json_error(replay, "invalid_grant")
    userinfo = await backend.get("/userinfo", headers=bearer)
    assert userinfo.status_code == 401
    assert userinfo.json()["error"] == "invalid_token"
    for token in (tokens["access_token"], tokens["refresh_token"]):
        introspected = await backend.post("/introspect", data={"token": token}, auth=rp.basic)
        assert introspected.json() == {"active": False}
    refresh = await backend.post(
        "/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}, auth=rp.basic
    )
    assert_json_error(refresh, "invalid_grant")


async def test_concurrent_redemptions_one_wins_and_its_tokens_are_revoked(
    rp: RegisteredClient, backend: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    """The replay may arrive while the first use is still being answered: it must still revoke what that issued."""
    for _ in range(3):
        verifier, challenge = pkce_pair()
        code = await get_code(browser, rp, challenge)

        answers = await asyncio.gather(
            *(backend.post("/token", data=code_form(code, verifier), auth=rp.basic) for _ in range(2))
        )

        assert sorted(a.status_code for a in answers) == [200, 400]
        winner = next(a for a in answers if a.status_code == 200).json()
        assert_json_error(next(a for a in answers if a.status_code == 400), "invalid_grant")
        userinfo = await backend.get("/userinfo", headers={"Authorization": f"Bearer {winner['access_token']}"})
        assert userinfo.status_code == 401
        assert userinfo.json()["error"] == "invalid_token"


async def test_a_refused_redemption_still_burns_the_code(
    rp: RegisteredClient, backend: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    verifier, challenge = pkce_pair()
    wrong, _ = pkce_pair()
    code = await get_code(browser, rp, challenge)

    first = await backend.post("/token", data=code_form(code, wrong), auth=rp.basic)
    second = await backend.post("/token", data=code_form(code, verifier), auth=rp.basic)

    assert_json_error(first, "invalid_grant")
    assert_json_error(second, "invalid_grant")


async def test_unknown_code_is_invalid_grant(rp: RegisteredClient, backend: httpx.AsyncClient) -> None:
    response = await backend.post("/token", data=code_form("no-such-code"), auth=rp.basic)
    assert_json_error(response, "invalid_grant")


async def test_missing_code_is_invalid_request(rp: RegisteredClient, backend: httpx.AsyncClient) -> None:
    response = await backend.post(
        "/token", data={"grant_type": "authorization_code", "redirect_uri": rp.redirect_uri}, auth=rp.basic
    )
    assert_json_error(response, "invalid_request")


async def test_expired_code_is_invalid_grant(
    rp: RegisteredClient, backend: httpx.AsyncClient, browser: httpx.AsyncClient, clock: FrozenClock
) -> None:
    code = await get_code(browser, rp)
    clock.advance(61)

    response = await backend.post("/token", data=code_form(code), auth=rp.basic)

    assert_json_error(response, "invalid_grant")


async def test_code_of_another_client_is_invalid_grant(
    running: Running, rp: RegisteredClient, backend: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    other = await make_client(running.idp, "Other")
    code = await get_code(browser, rp)

    response = await backend.post("/token", data=code_form(code), auth=other.basic)

    assert_json_error(response, "invalid_grant")


async def test_wrong_redirect_uri_is_invalid_grant(
    rp: RegisteredClient, backend: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    code = await get_code(browser, rp)

    # Registered for this client, but not the one the code was issued for.
    response = await backend.post(
        "/token", data=code_form(code, redirect_uri="https://jobs.example/other"), auth=rp.basic
    )

    assert_json_error(response, "invalid_grant")


async def test_missing_redirect_uri_is_refused(
    rp: RegisteredClient, backend: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    code = await get_code(browser, rp)
    response = await backend.post("/token", data={"grant_type": "authorization_code", "code": code}, auth=rp.basic)
    assert_json_error(response, "invalid_request")


async def test_wrong_code_verifier_is_invalid_grant(
    rp: RegisteredClient, backend: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    _, challenge = pkce_pair()
    other_verifier, _ = pkce_pair()
    code = await get_code(browser, rp, challenge)

    response = await backend.post("/token", data=code_form(code, other_verifier), auth=rp.basic)

    assert_json_error(response, "invalid_grant")


async def test_missing_code_verifier_after_a_challenge_is_invalid_grant(
    rp: RegisteredClient, backend: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    _, challenge = pkce_pair()
    code = await get_code(browser, rp, challenge)

    response = await backend.post("/token", data=code_form(code), auth=rp.basic)

    assert_json_error(response, "invalid_grant")


async def test_verifier_without_a_challenge_is_invalid_grant(
    rp: RegisteredClient, backend: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    verifier, _ = pkce_pair()
    code = await get_code(browser, rp)

    response = await backend.post("/token", data=code_form(code, verifier), auth=rp.basic)

    assert_json_error(response, "invalid_grant")


@pytest.mark.parametrize(
    "verifier",
    [
        pytest.param("a" * 42, id="too-short"),
        pytest.param("a" * 129, id="too-long"),
        pytest.param("a" * 42 + "+", id="plus"),
        pytest.param("a" * 42 + "=", id="padding"),
        pytest.param("a" * 42 + "é", id="non-ascii"),
        pytest.param("a" * 20 + " " + "a" * 22, id="space"),
    ],
)
async def test_malformed_code_verifier_is_invalid_request(
    rp: RegisteredClient, backend: httpx.AsyncClient, browser: httpx.AsyncClient, verifier: str
) -> None:
    _, challenge = pkce_pair()
    code = await get_code(browser, rp, challenge)

    response = await backend.post("/token", data=code_form(code, verifier), auth=rp.basic)

    assert_json_error(response, "invalid_request")


async def test_public_client_redeems_with_pkce_and_client_id_only(
    running: Running, backend: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    app = RegisteredClient(
        (await make_client(running.idp, "Mobile", public=True, redirect_uris=["com.jobs.app:/cb"])).client_id,
        None,
        "com.jobs.app:/cb",
    )
    verifier, challenge = pkce_pair()
    code = await get_code(browser, app, challenge)

    response = await backend.post(
        "/token", data={**code_form(code, verifier, redirect_uri=app.redirect_uri), "client_id": app.client_id}
    )

    assert response.status_code == 200, response.text


# -- refresh tokens ------------------------------------------------------------------------------------


async def test_refresh_token_of_another_client_is_invalid_grant_and_stays_usable_by_its_owner(
    running: Running, rp: RegisteredClient, backend: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    other = await make_client(running.idp, "Other")
    tokens = await redeem(backend, browser, rp)
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}

    stolen = await backend.post("/token", data=form, auth=other.basic)
    owner = await backend.post("/token", data=form, auth=rp.basic)

    assert_json_error(stolen, "invalid_grant")
    assert owner.status_code == 200, owner.text


async def test_expired_refresh_token_is_invalid_grant(
    running: Running,
    rp: RegisteredClient,
    backend: httpx.AsyncClient,
    browser: httpx.AsyncClient,
    clock: FrozenClock,
) -> None:
    tokens = await redeem(backend, browser, rp)
    clock.advance(running.idp.settings.refresh_token_lifetime_seconds + 1)

    response = await backend.post(
        "/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}, auth=rp.basic
    )

    assert_json_error(response, "invalid_grant")


async def test_concurrent_refresh_reuse_revokes_the_new_pair_too(
    rp: RegisteredClient, backend: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    for _ in range(3):
        tokens = await redeem(backend, browser, rp)
        form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}

        answers = await asyncio.gather(*(backend.post("/token", data=form, auth=rp.basic) for _ in range(2)))

        assert sorted(a.status_code for a in answers) == [200, 400]
        winner = next(a for a in answers if a.status_code == 200).json()
        assert_json_error(next(a for a in answers if a.status_code == 400), "invalid_grant")
        userinfo = await backend.get("/userinfo", headers={"Authorization": f"Bearer {winner['access_token']}"})
        assert userinfo.status_code == 401
        assert userinfo.json()["error"] == "invalid_token"
        again = await backend.post(
            "/token", data={"grant_type": "refresh_token", "refresh_token": winner["refresh_token"]}, auth=rp.basic
        )
        assert_json_error(again, "invalid_grant")


async def test_unknown_refresh_token_is_invalid_grant(rp: RegisteredClient, backend: httpx.AsyncClient) -> None:
    response = await backend.post(
        "/token", data={"grant_type": "refresh_token", "refresh_token": "nope"}, auth=rp.basic
    )
    assert_json_error(response, "invalid_grant")


async def test_an_access_token_is_not_a_refresh_token(
    rp: RegisteredClient, backend: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    tokens = await redeem(backend, browser, rp)
    response = await backend.post(
        "/token", data={"grant_type": "refresh_token", "refresh_token": tokens["access_token"]}, auth=rp.basic
    )
    assert_json_error(response, "invalid_grant")


async def test_refresh_cannot_widen_the_scope(
    rp: RegisteredClient, backend: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    tokens = await redeem(backend, browser, rp, scope="openid email")
    response = await backend.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "scope": "openid profile"},
        auth=rp.basic,
    )
    assert_json_error(response, "invalid_scope")
    # The refused request did not use the token up: a retry without the extra scope works (and is no "reuse").
    retry = await backend.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "scope": "openid"},
        auth=rp.basic,
    )
    assert retry.status_code == 200, retry.text
    assert retry.json()["scope"] == "openid"


async def test_a_narrower_refresh_narrows_the_access_token_only(
    rp: RegisteredClient, backend: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    """RFC 6749 §6: the grant keeps its scopes; a later refresh may ask for all of them again."""
    tokens = await redeem(backend, browser, rp, scope="openid email profile")

    narrow = await backend.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "scope": "openid"},
        auth=rp.basic,
    )
    assert narrow.status_code == 200, narrow.text
    assert narrow.json()["scope"] == "openid"
    bearer = {"Authorization": f"Bearer {narrow.json()['access_token']}"}
    assert (await backend.get("/userinfo", headers=bearer)).json().keys() == {"sub"}
    rotated = await backend.post("/introspect", data={"token": narrow.json()["refresh_token"]}, auth=rp.basic)
    assert rotated.json()["scope"] == "openid email profile"

    wide = await backend.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": narrow.json()["refresh_token"]},
        auth=rp.basic,
    )
    assert wide.status_code == 200, wide.text
    assert wide.json()["scope"] == "openid email profile"
    bearer = {"Authorization": f"Bearer {wide.json()['access_token']}"}
    assert {"sub", "email", "name"} <= (await backend.get("/userinfo", headers=bearer)).json().keys()
    beyond = await backend.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": wide.json()["refresh_token"], "scope": "openid phone"},
        auth=rp.basic,
    )
    assert_json_error(beyond, "invalid_scope")


# -- client credentials ----------------------------------------------------------------------------------


@pytest.fixture
async def service(running: Running) -> RegisteredClient:
    return await make_client(running.idp, "Back end", redirect_uris=[], grant_types=["client_credentials"])


async def test_client_credentials_issues_a_service_token(service: RegisteredClient, backend: httpx.AsyncClient) -> None:
    response = await backend.post("/token", data={"grant_type": "client_credentials"}, auth=service.basic)

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] > 0
    assert "refresh_token" not in body
    assert "id_token" not in body

    introspected = await backend.post("/introspect", data={"token": body["access_token"]}, auth=service.basic)
    answer = introspected.json()
    assert answer["active"] is True
    assert answer["client_id"] == service.client_id
    assert "sub" not in answer

    userinfo = await backend.get("/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert userinfo.status_code == 401
    assert userinfo.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in userinfo.headers["www-authenticate"]


async def test_client_credentials_with_client_secret_post(
    service: RegisteredClient, backend: httpx.AsyncClient
) -> None:
    assert service.secret is not None
    response = await backend.post(
        "/token",
        data={"grant_type": "client_credentials", "client_id": service.client_id, "client_secret": service.secret},
    )
    assert response.status_code == 200, response.text


async def test_client_credentials_refused_for_public_clients(running: Running, backend: httpx.AsyncClient) -> None:
    app = await make_client(running.idp, "Mobile", public=True, redirect_uris=["com.jobs.app:/cb"])
    response = await backend.post("/token", data={"grant_type": "client_credentials", "client_id": app.client_id})
    assert_json_error(response, "unauthorized_client")


async def test_client_credentials_refused_without_the_grant(rp: RegisteredClient, backend: httpx.AsyncClient) -> None:
    response = await backend.post("/token", data={"grant_type": "client_credentials"}, auth=rp.basic)
    assert_json_error(response, "unauthorized_client")


async def test_client_credentials_wrong_secret_is_401(service: RegisteredClient, backend: httpx.AsyncClient) -> None:
    response = await backend.post(
        "/token", data={"grant_type": "client_credentials"}, auth=(service.client_id, "wrong")
    )
    assert_json_error(response, "invalid_client", 401)


@pytest.mark.parametrize("scope", ["openid", "openid email", "profile", "offline_access"])
async def test_client_credentials_with_person_scopes_is_invalid_scope(
    service: RegisteredClient, backend: httpx.AsyncClient, scope: str
) -> None:
    response = await backend.post(
        "/token", data={"grant_type": "client_credentials", "scope": scope}, auth=service.basic
    )
    assert_json_error(response, "invalid_scope")


@pytest.fixture
async def scoped(running: Running) -> RegisteredClient:
    return await make_client(
        running.idp, "Jobs API client", grant_types=["client_credentials"], scopes=["jobs.read", "jobs.write"]
    )


@pytest.mark.parametrize(
    ("asked", "granted"),
    [(None, "jobs.read jobs.write"), ("jobs.read", "jobs.read"), ("jobs.write jobs.read", "jobs.write jobs.read")],
)
async def test_client_credentials_carry_registered_scopes(
    scoped: RegisteredClient, backend: httpx.AsyncClient, asked: str | None, granted: str
) -> None:
    form = {"grant_type": "client_credentials", **({"scope": asked} if asked else {})}

    response = await backend.post("/token", data=form, auth=scoped.basic)

    assert response.status_code == 200, response.text
    assert response.json()["scope"] == granted
    introspected = await backend.post("/introspect", data={"token": response.json()["access_token"]}, auth=scoped.basic)
    assert introspected.json()["scope"] == granted


@pytest.mark.parametrize("asked", ["jobs.admin", "jobs.read jobs.admin", "JOBS.READ", "anything"])
async def test_client_credentials_refuse_scopes_not_registered(
    running: Running, scoped: RegisteredClient, service: RegisteredClient, backend: httpx.AsyncClient, asked: str
) -> None:
    for client in (scoped, service):  # `service` registered no scopes at all
        response = await backend.post(
            "/token", data={"grant_type": "client_credentials", "scope": asked}, auth=client.basic
        )
        assert_json_error(response, "invalid_scope")
    async with running.idp.db.transaction() as session:
        assert (await session.execute(select(func.count()).select_from(Token))).scalar_one() == 0


async def test_client_credentials_client_cannot_use_the_code_flow(
    service: RegisteredClient, backend: httpx.AsyncClient
) -> None:
    response = await backend.post("/token", data=code_form("x"), auth=service.basic)
    assert_json_error(response, "unauthorized_client")
