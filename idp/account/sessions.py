"""`/account/sessions` (INTERFACE §4): where the person is signed in, and signing out one session or all others."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from idp.errors import NotFound
from idp.services.sessions import ActiveSession
from idp.templating import render
from idp.web import messages
from idp.web.errors import error_page
from idp.web.forms import page_form
from idp.web.params import read_query_leniently
from idp.web.redirects import to_login
from idp.web.request import client_ip, services, session_cookie

PATH = "/account/sessions"
# A `sid` is 32 characters; a little room, and anything longer is not one of ours.
FIELDS = {"csrf_token": 128, "session": 64}


async def sessions_page(request: Request) -> Response:
    idp = services(request)
    active = await idp.sessions.current(session_cookie(request))
    if active is None:
        return to_login(PATH)
    views = await idp.sessions.list_of_user(active.user.id, current_sid=active.sid)
    # This browser first, then the most recently used.
    views.sort(key=lambda v: (not v.current, -v.last_seen_at.timestamp()))
    notice = {"one": "one", "others": "others"}.get(read_query_leniently(request, {"done": 20}).get("done", ""))
    return render(request, "account/sessions.html", {"user": active.user, "sessions": views, "notice": notice})


async def _posted(request: Request) -> tuple[ActiveSession | None, dict[str, str] | Response]:
    """The signed-in person and the form, or the response that ends the request (sign-in, bad form, CSRF)."""
    idp = services(request)
    active = await idp.sessions.current(session_cookie(request))
    if active is None:
        return None, to_login(PATH)
    form = await page_form(request, FIELDS)
    if isinstance(form, Response):
        return active, form
    return active, form


async def sign_out_submit(request: Request) -> Response:
    """Sign out the session named by `session` (its opaque sid, never the cookie or its hash)."""
    active, form = await _posted(request)
    if isinstance(form, Response):
        return form
    assert active is not None
    idp = services(request)
    try:
        await idp.sessions.sign_out_session(active, form["session"], client_ip=client_ip(request), audit=idp.audit)
    except NotFound:
        return error_page(request, 404, messages.NO_SUCH_SESSION, messages.NO_SUCH_SESSION_TEXT)
    if form["session"] == active.sid:
        response: Response = RedirectResponse("/login", status_code=303)
        idp.cookies.clear(response, idp.cookies.session_name)
        return response
    return RedirectResponse(PATH + "?done=one", status_code=303)


async def sign_out_others_submit(request: Request) -> Response:
    active, form = await _posted(request)
    if isinstance(form, Response):
        return form
    assert active is not None
    idp = services(request)
    await idp.sessions.sign_out_others(active, client_ip=client_ip(request), audit=idp.audit)
    return RedirectResponse(PATH + "?done=others", status_code=303)
