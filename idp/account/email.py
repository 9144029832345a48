"""`/account/email` (INTERFACE §4): change the sign-in address. A link goes to the new address; the change takes
effect when it is used (confirmed with a button, so a mail scanner opening the link changes nothing)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from idp.account.login import rate_limited_page
from idp.account.password import link_invalid, unavailable
from idp.auth.passwords import MAX_PASSWORD_LENGTH
from idp.errors import InvalidCredentials, InvalidInput, Overloaded, RateLimited
from idp.i18n import N_, select_locale
from idp.services.accounts import AddressTaken, LinkInvalid, SameEmail
from idp.services.users import MAX_EMAIL_LENGTH
from idp.templating import render
from idp.web import messages
from idp.web.errors import error_page
from idp.web.forms import page_form
from idp.web.params import read_query_leniently
from idp.web.redirects import to_login
from idp.web.request import client_ip, services, session_cookie

PATH = "/account/email"
FIELDS = {"email": MAX_EMAIL_LENGTH, "password": MAX_PASSWORD_LENGTH, "csrf_token": 128}
CONFIRM_FIELDS = {"token": 100, "csrf_token": 128}
QUERY = {"token": 100}

BAD_EMAIL = N_("Enter a valid email address.")
SAME_EMAIL = N_("This is already your email address.")
WRONG_PASSWORD = N_("Your current password is not correct.")
TAKEN = N_("This address is taken")
TAKEN_TEXT = N_(
    "Another account now uses this email address, so yours was not changed. Sign in and choose another address."
)


def _form(request: Request, *, error: str | None = None, email: str = "", status: int = 200) -> Response:
    return render(request, "account/email_change.html", {"error": error, "email": email}, status_code=status)


async def change_page(request: Request) -> Response:
    """The form: the new address and the current password."""
    idp = services(request)
    if not idp.accounts.enabled:
        return unavailable(request)
    if await idp.sessions.current(session_cookie(request)) is None:
        return to_login(PATH)
    return _form(request)


async def change_submit(request: Request) -> Response:
    """Send the link; the answer is the same whether or not the new address has an account."""
    idp = services(request)
    if not idp.accounts.enabled:
        return unavailable(request)
    form = await page_form(request, FIELDS)
    if isinstance(form, Response):
        return form
    active = await idp.sessions.current(session_cookie(request))
    if active is None:
        return to_login(PATH)
    typed = form["email"].strip()
    try:
        new_email = await idp.accounts.request_email_change(
            active,
            typed,
            form["password"],
            locale=select_locale(request),
            client_ip=client_ip(request),
            device=request.cookies.get(idp.cookies.device_name),
        )
    except SameEmail:
        return _form(request, error=SAME_EMAIL, email=typed, status=400)
    except InvalidInput:
        return _form(request, error=BAD_EMAIL, email=typed, status=400)
    except InvalidCredentials:
        return _form(request, error=WRONG_PASSWORD, email=typed, status=400)
    except RateLimited as exc:
        return rate_limited_page(request, exc)
    except Overloaded as exc:
        return error_page(
            request, 503, messages.BUSY, messages.BUSY_TEXT, headers={"Retry-After": str(exc.retry_after)}
        )
    return render(request, "account/email_change_sent.html", {"email": new_email})


async def confirm_page(request: Request) -> Response:
    """The link from the email: says which address the account moves to, with a button to do it."""
    idp = services(request)
    token = read_query_leniently(request, QUERY).get("token", "")
    try:
        link = await idp.accounts.check_email_change_link(token)
    except LinkInvalid:
        return link_invalid(request, kind="email_change")
    return render(request, "account/email_change_confirm.html", {"token": token, "new_email": link.new_email})


async def confirm_submit(request: Request) -> Response:
    idp = services(request)
    form = await page_form(request, CONFIRM_FIELDS)
    if isinstance(form, Response):
        return form
    try:
        new_email = await idp.accounts.confirm_email_change(form["token"], client_ip=client_ip(request))
    except LinkInvalid:
        return link_invalid(request, kind="email_change")
    except AddressTaken:
        return error_page(request, 409, TAKEN, TAKEN_TEXT)
    context: dict[str, Any] = {"email": new_email}
    return render(request, "account/email_changed.html", context)
