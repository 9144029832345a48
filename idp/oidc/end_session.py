"""RP-Initiated Logout 1.0: end the idp session, then return to a registered post-logout URI.

With a valid `id_token_hint` for the signed-in person the session ends at once; otherwise the person is asked.
"""

from __future__ import annotations

from joserfc.errors import JoseError
from starlette.requests import Request
from starlette.responses import Response

from idp.errors import UnreadableInput
from idp.i18n import N_
from idp.oidc.errors import redirect_with
from idp.services.clients import ClientInfo
from idp.services.sessions import JobBoards
from idp.templating import render
from idp.web import messages
from idp.web.errors import csrf_failed, error_page
from idp.web.params import read_form, read_query
from idp.web.request import client_ip, services, session_cookie

LIMITS = {
    "id_token_hint": 4000,
    "client_id": 64,
    "post_logout_redirect_uri": 2000,
    "state": 2000,
    "ui_locales": 100,
    "logout_hint": 320,
}


class LogoutError(Exception):
    """Shown on a page: we cannot trust this request with a redirect."""


async def end_session(request: Request) -> Response:
    """GET or POST /end_session."""
    try:
        params = await _params(request)
        hint, client, target = await _validate(request, params)
    except LogoutError as exc:
        return _error(request, str(exc))
    idp = services(request)
    active = await idp.sessions.current(session_cookie(request))
    if hint is not None and active is not None and hint.get("sub") == active.user.id:
        return await _finish(request, client, target, params.get("state"))
    if hint is not None and active is None:
        return _after_logout(request, target, params.get("state"))
    return render(
        request,
        "end_session/confirm.html",
        {
            "client": client,
            "signed_in": active is not None,
            "boards": await idp.sessions.job_boards(active),
            "hidden": {k: params[k] for k in ("client_id", "post_logout_redirect_uri", "state") if params.get(k)},
        },
    )


async def end_session_confirm(request: Request) -> Response:
    """POST /end_session/confirm: the person pressed "Sign out"."""
    idp = services(request)
    try:
        form = await read_form(request, {**LIMITS, "csrf_token": 128})
    except UnreadableInput as exc:
        return _error(request, str(exc))
    if not idp.csrf.check(request, form.pop("csrf_token")):
        return csrf_failed(request)
    params = {k: v for k, v in form.items() if v}
    try:
        _, client, target = await _validate(request, params)
    except LogoutError as exc:
        return _error(request, str(exc))
    return await _finish(request, client, target, params.get("state"))


async def _finish(request: Request, client: ClientInfo | None, target: str | None, state: str | None) -> Response:
    idp = services(request)
    boards = await idp.sessions.sign_out(session_cookie(request), client_ip=client_ip(request), audit=idp.audit)
    response = _after_logout(request, target, state, boards)
    idp.cookies.clear(response, idp.cookies.session_name)
    return response


def _after_logout(request: Request, target: str | None, state: str | None, boards: JobBoards | None = None) -> Response:
    if target:
        return redirect_with(target, {"state": state})
    return render(request, "login/logged_out.html", {"boards": boards})


async def _validate(
    request: Request, params: dict[str, str]
) -> tuple[dict[str, object] | None, ClientInfo | None, str | None]:
    """The hint's claims (signature checked, expiry ignored), the client, and a registered return URI."""
    idp = services(request)
    claims = None
    client_id = params.get("client_id")
    if params.get("id_token_hint"):
        try:
            token = await idp.key_ring.verify_current(params["id_token_hint"])
        except (JoseError, ValueError):
            raise LogoutError(N_("The sign-out request carries an ID token that was not issued here.")) from None
        claims = token.claims
        if claims.get("iss") != idp.settings.issuer:
            raise LogoutError(N_("The sign-out request carries an ID token from another issuer."))
        audience = claims.get("aud")
        hinted = audience[0] if isinstance(audience, list) and audience else audience
        if client_id and hinted != client_id:
            raise LogoutError(N_("The ID token was issued to another application."))
        client_id = str(hinted) if hinted else client_id
    client = await idp.clients.find(client_id) if client_id else None
    if client_id and client is None:
        raise LogoutError(N_("The application that sent you here is not registered."))
    target = params.get("post_logout_redirect_uri")
    if target and (client is None or target not in client.post_logout_redirect_uris):
        raise LogoutError(N_("The address to return to after signing out is not registered for this application."))
    return claims, client, target


async def _params(request: Request) -> dict[str, str]:
    try:
        if request.method == "POST":
            found = await read_form(request, LIMITS)
        else:
            found = read_query(request, LIMITS)
    except UnreadableInput as exc:
        raise LogoutError(str(exc)) from None
    return {k: v for k, v in found.items() if v}


def _error(request: Request, message: str) -> Response:
    return error_page(request, 400, messages.BAD_SIGN_OUT_LINK, message)
