"""A demo job board: a relying party that signs people in through idp (authlib's Starlette OAuth client).

Run beside idp by `idp demo`, or by hand (JOBBOARD_CLIENT_ID and JOBBOARD_CLIENT_SECRET set):
    uvicorn --app-dir examples/jobboard --factory app:create_app_from_env --port 8001
"""

from __future__ import annotations

import html
import json
import os
import secrets

from authlib.integrations.starlette_client import OAuth, OAuthError
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


def create_app(*, issuer: str, client_id: str, client_secret: str, base_url: str, session_secret: str) -> Starlette:
    oauth = OAuth()
    idp = oauth.register(
        "idp",
        client_id=client_id,
        client_secret=client_secret,
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": "openid email profile", "code_challenge_method": "S256"},
    )

    async def home(request: Request) -> Response:
        if "state" in request.query_params:  # back from idp's end_session
            try:
                await idp.validate_logout_response(request)
            except OAuthError as exc:
                return page(f"<p>That sign-out response was not for us: {text(exc.description)}</p>", 400)
            return page('<p>You have signed out.</p><p><a href="/login">Sign in</a></p>')
        claims = request.session.get("claims")
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
        ],
        # Its own cookie name: cookies are shared by every port of a host, and idp's are idp_session/idp_csrf.
        middleware=[Middleware(SessionMiddleware, secret_key=session_secret, session_cookie="jobboard_session")],
    )


def create_app_from_env() -> Starlette:
    """For `uvicorn --factory app:create_app_from_env`: settings from JOBBOARD_* variables."""
    return create_app(
        issuer=os.environ.get("JOBBOARD_ISSUER", "http://127.0.0.1:8000").rstrip("/"),
        client_id=os.environ["JOBBOARD_CLIENT_ID"],
        client_secret=os.environ["JOBBOARD_CLIENT_SECRET"],
        base_url=os.environ.get("JOBBOARD_URL", "http://127.0.0.1:8001").rstrip("/"),
        session_secret=os.environ.get("JOBBOARD_SESSION_SECRET") or secrets.token_urlsafe(32),
    )
