"""`/account`: who is signed in, with sign-out; anonymous visitors are sent to `/login`."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from idp.templating import render
from idp.web.request import services, session_cookie


async def account_page(request: Request) -> Response:
    active = await services(request).sessions.current(session_cookie(request))
    if active is None:
        return RedirectResponse("/login?" + urlencode({"next": "/account"}), status_code=303)
    return render(
        request,
        "account/index.html",
        {"user": active.user, "auth_time": active.auth_time, "methods": active.methods},
    )
