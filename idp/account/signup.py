"""`/signup`, `/signup/resend` and `/verify-email` (INTERFACE §4): people create their own account, and confirm
their address with a single-use link; no answer tells whether an address already has an account."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from idp.account.login import rate_limited_page
from idp.account.password import LINK_INVALID, LINK_INVALID_TEXT
from idp.auth.passwords import MAX_PASSWORD_LENGTH
from idp.errors import Conflict, InvalidInput, Overloaded, RateLimited
from idp.i18n import N_, select_locale
from idp.security import safe_next
from idp.services.accounts import LinkInvalid, WeakPassword
from idp.services.users import MAX_EMAIL_LENGTH, MAX_NAME_LENGTH
from idp.templating import render
from idp.web import messages
from idp.web.errors import error_page
from idp.web.forms import page_form
from idp.web.request import client_ip, services

log = logging.getLogger(__name__)

SIGNUP_FIELDS = {
    "email": MAX_EMAIL_LENGTH,
    "name": MAX_NAME_LENGTH,
    "password": MAX_PASSWORD_LENGTH,
    "next": 2000,
    "csrf_token": 128,
}
RESEND_FIELDS = {"email": MAX_EMAIL_LENGTH, "csrf_token": 128}

SIGNUP_OFF = N_("Creating an account is not available here")
SIGNUP_OFF_TEXT = N_(
    "Accounts on this service are created by the job site you came from. Go back to it, or sign in if you have an "
    "account."
)
BAD_EMAIL = N_("Enter a valid email address, such as name@example.com.")
BAD_NAME = N_("The name is too long or contains characters that cannot be shown.")


def signup_off(request: Request) -> Response:
    return error_page(request, 404, SIGNUP_OFF, SIGNUP_OFF_TEXT)


async def _form(
    request: Request,
    next_url: str,
    *,
    email: str = "",
    name: str = "",
    error: str | None = None,
    values: dict[str, object] | None = None,
    status: int = 200,
) -> Response:
    client = await services(request).accounts.signup_client(next_url)
    return render(
        request,
        "account/signup.html",
        {
            "next": next_url,
            "email": email,
            "name": name,
            "error": error,
            "error_values": values or {},
            "board": client.name if client else None,
        },
        status_code=status,
    )


async def signup_page(request: Request) -> Response:
    next_url = safe_next(request.query_params.get("next"), default="")
    if not await services(request).accounts.signup_allowed(next_url):
        return signup_off(request)
    return await _form(request, next_url, email=request.query_params.get("login_hint", "")[:MAX_EMAIL_LENGTH])


async def signup_submit(request: Request) -> Response:
    """Create the account (or tell the owner of a taken address by email); the same page either way."""
    idp = services(request)
    form = await page_form(request, SIGNUP_FIELDS)
    if isinstance(form, Response):
        return form
    next_url = safe_next(form["next"], default="")
    if not await idp.accounts.signup_allowed(next_url):
        return signup_off(request)
    email, name = form["email"].strip(), form["name"].strip()
    try:
        await idp.accounts.sign_up(
            email,
            name,
            form["password"],
            locale=select_locale(request),
            client_ip=client_ip(request),
            next_url=next_url,
        )
    except WeakPassword as exc:
        return await _form(request, next_url, email=email, name=name, error=exc.message, values=exc.values, status=400)
    except Conflict:
        pass  # the address was taken by a concurrent sign-up: the same answer as for any taken address
    except InvalidInput as exc:
        error = BAD_NAME if str(exc).startswith("name") else BAD_EMAIL
        return await _form(request, next_url, email=email, name=name, error=error, status=400)
    except RateLimited as exc:
        log.info("sign-up refused by the limit", extra={"scope": exc.scope})
        return rate_limited_page(request, exc)
    except Overloaded as exc:
        return error_page(
            request, 503, messages.BUSY, messages.BUSY_TEXT, headers={"Retry-After": str(exc.retry_after)}
        )
    return render(request, "account/signup_sent.html", {"email": email})


async def resend_page(request: Request) -> Response:
    if not services(request).accounts.enabled:
        return signup_off(request)
    email = request.query_params.get("login_hint", "")[:MAX_EMAIL_LENGTH]
    return render(request, "account/signup_resend.html", {"email": email, "error": None})


async def resend_submit(request: Request) -> Response:
    """Send the confirmation link again, within the limits; the same answer whatever the address."""
    idp = services(request)
    if not idp.accounts.enabled:
        return signup_off(request)
    form = await page_form(request, RESEND_FIELDS)
    if isinstance(form, Response):
        return form
    email = form["email"].strip()
    if not email:
        return render(request, "account/signup_resend.html", {"email": "", "error": BAD_EMAIL}, status_code=400)
    try:
        await idp.accounts.resend_verification(email, locale=select_locale(request), client_ip=client_ip(request))
    except RateLimited as exc:
        return rate_limited_page(request, exc)
    return render(request, "account/signup_sent.html", {"email": email})


async def verify_email(request: Request) -> Response:
    """The link from the confirmation email: the address is verified, and the person goes back where they were."""
    idp = services(request)
    try:
        next_url = await idp.accounts.verify_email(request.query_params.get("token", ""), client_ip=client_ip(request))
    except LinkInvalid:
        return render(
            request, "account/link_invalid.html", {"title": LINK_INVALID, "message": LINK_INVALID_TEXT}, status_code=400
        )
    if next_url:
        # Back to the job board's sign-in request: it continues there (signing in first if need be).
        return RedirectResponse(next_url, status_code=303)
    return render(request, "account/email_verified.html", {})
