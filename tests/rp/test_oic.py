"""An independent OpenID Connect client library (pyoidc, `oic`) completes every flow against a live idp over HTTP."""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs, urlsplit

import pytest
from jwkest import BadSignature
from oic.extension.client import Client as OAuthClient
from oic.oauth2.message import ErrorResponse
from oic.oic import Client
from oic.oic.message import (
    AccessTokenResponse,
    AuthorizationResponse,
    OpenIDSchema,
    ProviderConfigurationResponse,
    RegistrationResponse,
)
from oic.utils.authn.client import CLIENT_AUTHN_METHOD
from oic.utils.settings import OicClientSettings

from tests.support.live import EMAIL, LOGOUT_URI, REDIRECT_URI, Browser, LiveIdp

SCOPE = ["openid", "email", "profile"]


def discover(live_idp: LiveIdp, client_id: str, secret: str | None, **registration: str) -> Client:
    """An oic RP that knows idp only by its issuer URL: provider config, JWKS and endpoints come from discovery."""
    rp = Client(client_authn_method=CLIENT_AUTHN_METHOD, settings=OicClientSettings(timeout=10))
    rp.provider_config(live_idp.issuer)
    info = {"client_id": client_id, "redirect_uris": [REDIRECT_URI], **registration}
    if secret is not None:
        info["client_secret"] = secret
    rp.store_registration_info(RegistrationResponse(**info))
    rp.redirect_uris = [REDIRECT_URI]
    return rp


def sign_in(rp: Client, browser: Browser) -> tuple[str, str, str]:
    """Authorization request with state, nonce and PKCE S256; the person signs in; the library parses the answer.

    Returns (state, nonce, code_verifier).
    """
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    pkce, verifier = rp.add_code_challenge()
    assert pkce["code_challenge_method"] == "S256"
    args = {"response_type": "code", "scope": SCOPE, "state": state, "nonce": nonce, "redirect_uri": REDIRECT_URI}
    url, _, _, request = rp.authorization_request_info(request_args={**args, **pkce})
    rp.authz_req[state] = request  # what the library checks the ID token against (nonce)
    landed = browser.visit(url)

    assert landed.startswith(REDIRECT_URI + "?"), landed
    answer = rp.parse_response(AuthorizationResponse, info=landed, sformat="urlencoded")
    assert isinstance(answer, AuthorizationResponse), answer
    assert answer["state"] == state
    assert answer["iss"] == rp.provider_info["issuer"]  # RFC 9207
    return state, nonce, verifier


def redeem(rp: Client, state: str, verifier: str, authn_method: str) -> AccessTokenResponse:
    tokens = rp.do_access_token_request(
        state=state,
        request_args={"code_verifier": verifier, "redirect_uri": REDIRECT_URI},
        authn_method=authn_method,
    )
    assert isinstance(tokens, AccessTokenResponse), tokens
    return tokens


def test_discovery_is_what_the_library_expects(live_idp: LiveIdp) -> None:
    rp = Client(client_authn_method=CLIENT_AUTHN_METHOD, settings=OicClientSettings(timeout=10))

    config = rp.provider_config(live_idp.issuer)

    assert isinstance(config, ProviderConfigurationResponse)
    # The library's own check of required fields and their types; it insists on an https issuer (Discovery §3),
    # which a loopback test server cannot be, so that one field is swapped for the check.
    assert ProviderConfigurationResponse(**{**config.to_dict(), "issuer": "https://idp.example"}).verify()
    assert config["issuer"] == live_idp.issuer
    assert rp.authorization_endpoint == f"{live_idp.issuer}/authorize"
    assert rp.token_endpoint == f"{live_idp.issuer}/token"
    assert rp.userinfo_endpoint == f"{live_idp.issuer}/userinfo"
    assert rp.end_session_endpoint == f"{live_idp.issuer}/end_session"
    assert config["id_token_signing_alg_values_supported"][0] == "RS256"
    assert config["code_challenge_methods_supported"] == ["S256"]
    # The keys behind jwks_uri are in the library's key jar under idp's issuer, ready to check signatures.
    assert {key.kty for key in rp.keyjar.get_issuer_keys(live_idp.issuer)} >= {"RSA", "EC"}


def test_confidential_client_full_lifecycle(live_idp: LiveIdp, browser: Browser) -> None:
    user_id = live_idp.make_user()
    client_id, secret = live_idp.make_client()
    rp = discover(live_idp, client_id, secret, token_endpoint_auth_method="client_secret_basic")

    state, nonce, verifier = sign_in(rp, browser)
    tokens = redeem(rp, state, verifier, "client_secret_basic")

    # The library checked the signature against the JWKS, iss, aud, exp/iat and (through state) the nonce.
    id_token = tokens["id_token"]
    assert id_token.jws_header["alg"] == "RS256"
    assert id_token["iss"] == live_idp.issuer
    assert id_token["aud"] == [client_id]
    assert id_token["sub"] == user_id
    assert id_token["nonce"] == nonce
    assert id_token["amr"] == ["pwd"]
    assert id_token["acr"] == "pwd"
    rp.verify_id_token(id_token, rp.authz_req[state])

    info = rp.do_user_info_request(method="GET", state=state)
    assert isinstance(info, OpenIDSchema), info
    assert info.to_dict() == {"sub": user_id, "email": EMAIL, "email_verified": False, "name": "Pat"}

    refreshed = rp.do_access_token_refresh(state=state, authn_method="client_secret_basic")
    assert isinstance(refreshed, AccessTokenResponse), refreshed
    assert refreshed["refresh_token"] != tokens["refresh_token"]
    assert refreshed["access_token"] != tokens["access_token"]
    assert refreshed["id_token"]["sub"] == user_id
    assert refreshed["id_token"]["sid"] == id_token["sid"]

    oauth = OAuthClient(client_id=client_id, client_authn_method=CLIENT_AUTHN_METHOD)
    oauth.provider_config(live_idp.issuer)
    oauth.client_secret = secret
    live = oauth.do_token_introspection(
        request_args={"token": refreshed["access_token"], "token_type_hint": "access_token"},
        authn_method="client_secret_basic",
    )
    assert live["active"] is True
    assert live["client_id"] == client_id
    assert live["sub"] == user_id
    assert set(live["scope"]) == set(SCOPE)

    assert (
        oauth.do_token_revocation(
            request_args={"token": refreshed["refresh_token"], "token_type_hint": "refresh_token"},
            authn_method="client_secret_basic",
        )
        == 200
    )
    # Revoking the refresh token ends its family: the access token issued beside it is dead too.
    dead = oauth.do_token_introspection(
        request_args={"token": refreshed["access_token"]}, authn_method="client_secret_basic"
    )
    assert dead["active"] is False
    refused = rp.do_access_token_refresh(state=state, authn_method="client_secret_basic")
    assert isinstance(refused, ErrorResponse)
    assert refused["error"] == "invalid_grant"

    # RP-initiated logout: the browser is sent to end_session with the ID token as hint.
    assert live_idp.session_count(user_id) == 1
    old_cookie = browser.http.cookies["idp_session"]
    logout_state = secrets.token_urlsafe(8)
    logout = rp.construct_EndSessionRequest(
        state=state, request_args={"post_logout_redirect_uri": LOGOUT_URI, "state": logout_state}
    )
    assert logout["id_token_hint"] == refreshed["id_token_jwt"]  # the library hints with its newest ID token
    landed = browser.visit(logout.request(rp.end_session_endpoint))

    assert landed == f"{LOGOUT_URI}?state={logout_state}"
    assert not browser.has_idp_session()
    assert live_idp.session_count(user_id) == 0
    # Even the old cookie, replayed, no longer signs anyone in.
    browser.http.cookies.set("idp_session", old_cookie)
    silent = rp.construct_AuthorizationRequest(
        request_args={
            "response_type": "code",
            "scope": SCOPE,
            "state": "after-logout",
            "redirect_uri": REDIRECT_URI,
            "prompt": "none",
        }
    )
    landed = browser.visit(silent.request(rp.authorization_endpoint))
    assert parse_qs(urlsplit(landed).query)["error"] == ["login_required"]


def test_public_client_with_pkce_and_no_secret(live_idp: LiveIdp, browser: Browser) -> None:
    user_id = live_idp.make_user()
    client_id, secret = live_idp.make_client("Jobs app", public=True)
    assert secret is None
    rp = discover(live_idp, client_id, None, token_endpoint_auth_method="none")

    state, nonce, verifier = sign_in(rp, browser)
    tokens = redeem(rp, state, verifier, "")

    assert tokens["id_token"]["sub"] == user_id
    assert tokens["id_token"]["nonce"] == nonce
    assert tokens["id_token"]["aud"] == [client_id]
    info = rp.do_user_info_request(method="GET", state=state)
    assert info["sub"] == user_id
    refreshed = rp.do_access_token_refresh(state=state)
    assert isinstance(refreshed, AccessTokenResponse), refreshed
    assert refreshed["id_token"]["sub"] == user_id


def test_public_client_code_without_verifier_is_refused(live_idp: LiveIdp, browser: Browser) -> None:
    live_idp.make_user()
    client_id, _ = live_idp.make_client("Jobs app", public=True)
    rp = discover(live_idp, client_id, None, token_endpoint_auth_method="none")
    state, _, _ = sign_in(rp, browser)

    refused = rp.do_access_token_request(state=state, request_args={"redirect_uri": REDIRECT_URI}, authn_method="")

    assert isinstance(refused, ErrorResponse), refused
    assert refused["error"] == "invalid_grant"


def test_es256_client_gets_an_es256_id_token_the_library_verifies(live_idp: LiveIdp, browser: Browser) -> None:
    user_id = live_idp.make_user()
    client_id, secret = live_idp.make_client("Jobs EC", id_token_alg="ES256")
    rp = discover(live_idp, client_id, secret, id_token_signed_response_alg="ES256")

    state, nonce, verifier = sign_in(rp, browser)
    tokens = redeem(rp, state, verifier, "client_secret_basic")

    id_token = tokens["id_token"]
    assert id_token.jws_header["alg"] == "ES256"
    assert id_token["sub"] == user_id
    assert id_token["nonce"] == nonce


def test_a_tampered_id_token_is_rejected_by_the_library(live_idp: LiveIdp, browser: Browser) -> None:
    """The library really checks the signature: one flipped byte in the signature and parsing fails."""
    live_idp.make_user()
    client_id, secret = live_idp.make_client()
    rp = discover(live_idp, client_id, secret)
    state, _, verifier = sign_in(rp, browser)
    tokens = redeem(rp, state, verifier, "client_secret_basic")
    header, payload, signature = tokens["id_token_jwt"].split(".")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    body = tokens.to_dict()
    body["id_token"] = f"{header}.{payload}.{flipped}"
    body.pop("id_token_jwt")

    with pytest.raises(BadSignature):
        rp.parse_response(AccessTokenResponse, info=AccessTokenResponse(**body).to_json(), sformat="json")
