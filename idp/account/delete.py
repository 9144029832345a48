"""`/account/delete` (INTERFACE §4): the person deletes their own account, giving the password and, with two-step
verification on, a current code; every session ends and the job boards are told (Back-Channel Logout)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from idp.account.login import rate_limited_page
from idp.auth.passwords import MAX_PASSWORD_LENGTH
from idp.errors import InvalidCredentials, Overloaded, RateLimited
from idp.i18n import N_
from idp.services.accounts import CodeRequired
from idp.services.mfa import InvalidCode
from idp.services.sessions import ActiveSession
from idp.templating import render
from idp.web import messages
from idp.web.errors import error_page
from idp.web.forms import page_form
from idp.web.redirects import to_login
from idp.web.request import client_ip, services, session_cookie

PATH = "/account/delete"
FIELDS = {"password": MAX_PASSWORD_LENGTH, "code": 64, "csrf_token": 128}

WRONG_PASSWORD = N_("Your current password is not correct.")
CODE_NEEDED = N_("Enter a code from your authenticator app or one of your backup codes.")


async def _form(request: Request, active: ActiveSession, *, error: str | None = None, status: int = 200) -> Response:
    mfa = await services(request).mfa.status(active.user.id)
    return render(
        request,
        "account/delete.html",
        {"user": active.user, "needs_code": mfa.enabled, "error": error},
        status_code=status,
    )


async def delete_page(request: Request) -> Response:
    """What deleting means, and the fields that confirm it."""
    active = await services(request).sessions.current(session_cookie(request))
    if active is None:
        return to_login(PATH)
    return await _form(request, active)


async def delete_submit(request: Request) -> Response:
    idp = services(request)
    form = await page_form(request, FIELDS)
    if isinstance(form, Response):
        return form
    active = await idp.sessions.current(session_cookie(request))
    if active is None:
        return to_login(PATH)
    try:
        await idp.accounts.delete_account(
            active,
            form["password"],
            form["code"],
            client_ip=client_ip(request),
            device=request.cookies.get(idp.cookies.device_name),
        )
    except InvalidCredentials:
        return await _form(request, active, error=WRONG_PASSWORD, status=400)
    except CodeRequired:
        return await _form(request, active, error=CODE_NEEDED, status=400)
    except InvalidCode:
        return await _form(request, active, error=messages.WRONG_CODE, status=400)
    except RateLimited as exc:
        return rate_limited_page(request, exc)
    except Overloaded as exc:
        return error_page(
            request, 503, messages.BUSY, messages.BUSY_TEXT, headers={"Retry-After": str(exc.retry_after)}
        )
    response = render(request, "account/deleted.html", {})
    idp.cookies.clear(response, idp.cookies.session_name)
    return response
