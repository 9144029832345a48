"""A demo job board: a relying party that signs people in through idp (authlib's Starlette OAuth client), and is
signed out by idp over the back channel (OpenID Connect Back-Channel Logout 1.0, validated with joserfc).

Run beside idp by `idp demo`, or by hand (JOBBOARD_CLIENT_ID and JOBBOARD_CLIENT_SECRET set):
    uvicorn --app-dir examples/jobboard --factory app:create_app_from_env --port 8001
"""

from __future__ import annotations

import html
import json
import os
import secrets
import time
from typing import Any

from authlib.integrations.starlette_client import OAuth, OAuthError
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Job board</title></head>
<body><h1>Job board</h1>{body}</body></html>"""


def page(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(PAGE.format(body=body), status_code=status, headers={"Cache-Control": "no-store"})


def text(value: object) -> str:
    return html.escape(value if isinstance(value, str) else json.dumps(value), quote=False)


LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
# A logout token older than this is refused (§2.6 step 9 lets the RP choose); idp signs it when it sends it.
MAX_TOKEN_AGE = 300
# The ended sessions this process remembers; a signed-in cookie older than its idp session is long expired by then.
MAX_ENDED = 100_000


class LogoutTokenError(Exception):
    """The logout token failed one of the checks of Back-Channel Logout 1.0 §2.6."""


def check_logout_token(token: str, keys: KeySet, *, issuer: str, client_id: str) -> dict[str, Any]:
    """§2.6: signature against idp's JWKS, typ, iss, aud, iat and exp, the events claim, sid, and no nonce."""
    try:
        decoded = jwt.decode(token, keys, algorithms=["RS256", "ES256"])
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": client_id},
            iat={"essential": True},
            exp={"essential": True},
            jti={"essential": True},
            leeway=30,
        ).validate(decoded.claims)
    except (JoseError, ValueError) as exc:
        raise LogoutTokenError(f"not a valid token from our issuer: {exc}") from None
    claims = dict(decoded.claims)
    if decoded.header.get("typ") != "logout+jwt":
        raise LogoutTokenError("typ is not logout+jwt")
    if not isinstance(claims.get("events"), dict) or LOGOUT_EVENT not in claims["events"]:
        raise LogoutTokenError("no back-channel logout event")
    if "nonce" in claims:
        raise LogoutTokenError("a logout token never carries a nonce")
    if not isinstance(claims.get("sid"), str) or not claims["sid"]:
        raise LogoutTokenError("no sid: this board signs out by session")
    if int(claims["iat"]) < time.time() - MAX_TOKEN_AGE:
        raise LogoutTokenError("issued too long ago")
    return claims


def create_app(
    *,
    issuer: str,
    client_id: str,
    client_secret: str,
    base_url: str,
    session_secret: str,
    session_cookie: str = "jobboard_session",
) -> Starlette:
    oauth = OAuth()
    idp = oauth.register(
        "idp",
        client_id=client_id,
        client_secret=client_secret,
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": "openid email profile", "code_challenge_method": "S256"},
    )

    # idp sessions that idp has told us ended (sid -> None, oldest first). The board's own session is a signed
    # cookie it cannot reach from here, so every page load checks its sid against this set.
    ended_sids: dict[str, None] = {}

    async def idp_keys(*, refresh: bool = False) -> KeySet:
        """idp's JWKS, fetched and cached by authlib (the same keys it checks ID tokens with)."""
        return KeySet.import_key_set(await idp.fetch_jwk_set(force=refresh))

    async def backchannel_logout(request: Request) -> Response:
        """POST /backchannel-logout: idp says an idp session ended; every board session under its sid ends."""
        form = await request.form()
        token = form.get("logout_token")
        if not isinstance(token, str) or not token or len(token) > 8000:
            return backchannel_error("logout_token is missing")
        try:
            try:
                claims = check_logout_token(token, await idp_keys(), issuer=issuer, client_id=client_id)
            except LogoutTokenError:
                # idp may have rotated its key since we fetched the JWKS: fetch once more before refusing.
                claims = check_logout_token(token, await idp_keys(refresh=True), issuer=issuer, client_id=client_id)
        except LogoutTokenError as exc:
            return backchannel_error(str(exc))
        ended_sids[claims["sid"]] = None
        while len(ended_sids) > MAX_ENDED:
            del ended_sids[next(iter(ended_sids))]
        return Response(status_code=200, headers={"Cache-Control": "no-store"})

    async def home(request: Request) -> Response:
        claims = request.session.get("claims")
        if claims and claims.get("sid") in ended_sids:
            request.session.clear()  # signed out at idp, told over the back channel
            return page('<p id="signed-out">You were signed out at idp.</p><p><a href="/login">Sign in</a></p>')
        if "state" in request.query_params:  # back from idp's end_session
            try:
                await idp.validate_logout_response(request)
            except OAuthError as exc:
                return page(f"<p>That sign-out response was not for us: {text(exc.description)}</p>", 400)
            return page('<p>You have signed out.</p><p><a href="/login">Sign in</a></p>')
        if not claims:
            return page('<p>Find your next job. <a href="/login">Sign in</a></p>')
        return page(
            f"<p>Signed in as {text(request.session.get('name') or claims['sub'])}.</p>"
            f"<dl><dt>amr</dt><dd id='amr'>{text(claims.get('amr'))}</dd>"
            f"<dt>acr</dt><dd id='acr'>{text(claims.get('acr'))}</dd></dl>"
            f"<h2>ID token claims</h2><pre id='claims'>{text(json.dumps(claims, indent=2, sort_keys=True))}</pre>"
            # A POST, so another site cannot sign you out with a link; the Lax session cookie stays home.
            "<form method='post' action='/logout'><button>Sign out</button></form>"
        )

    async def login(request: Request) -> Response:
        return await idp.authorize_redirect(request, f"{base_url}/callback")

    async def callback(request: Request) -> Response:
        try:
            token = await idp.authorize_access_token(request)  # checks signature, iss, aud, nonce, at_hash
        except OAuthError as exc:
            return page(f"<p>Sign-in failed: {text(exc.error)} {text(exc.description or '')}</p>", 400)
        profile = await idp.userinfo(token=token)  # name and email come from userinfo, not the ID token
        request.session.clear()
        request.session.update(claims=dict(token["userinfo"]), name=profile.get("name") or profile.get("email"))
        request.session["id_token"] = token["id_token"]
        return RedirectResponse("/", status_code=303)

    async def logout(request: Request) -> Response:
        id_token = request.session.get("id_token")
        request.session.clear()
        if not id_token:
            return RedirectResponse("/", status_code=303)
        return await idp.logout_redirect(request, post_logout_redirect_uri=f"{base_url}/", id_token_hint=id_token)

    return Starlette(
        routes=[
            Route("/", home),
            Route("/login", login),
            Route("/callback", callback),
            Route("/logout", logout, methods=["POST"]),
            Route("/backchannel-logout", backchannel_logout, methods=["POST"]),
        ],
        # Its own cookie name: cookies are shared by every port of a host, and idp's are idp_session/idp_csrf
        # (two boards on one host need two names).
        middleware=[Middleware(SessionMiddleware, secret_key=session_secret, session_cookie=session_cookie)],
    )


def backchannel_error(description: str) -> Response:
    """§2.8: 400 with an OAuth error body."""
    return Response(
        json.dumps({"error": "invalid_request", "error_description": description}),
        status_code=400,
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def create_app_from_env() -> Starlette:
    """For `uvicorn --factory app:create_app_from_env`: settings from JOBBOARD_* variables."""
    return create_app(
        issuer=os.environ.get("JOBBOARD_ISSUER", "http://127.0.0.1:8000").rstrip("/"),
        client_id=os.environ["JOBBOARD_CLIENT_ID"],
        client_secret=os.environ["JOBBOARD_CLIENT_SECRET"],
        base_url=os.environ.get("JOBBOARD_URL", "http://127.0.0.1:8001").rstrip("/"),
        session_secret=os.environ.get("JOBBOARD_SESSION_SECRET") or secrets.token_urlsafe(32),
        session_cookie=os.environ.get("JOBBOARD_SESSION_COOKIE") or "jobboard_session",
    )
