"""`/password/forgot` and `/password/reset` (INTERFACE §4): a forgotten password, without ever bypassing the
second factor, and without telling anyone whether an address has an account."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from idp.account.login import rate_limited_page
from idp.account.passkeys import MAX_CREDENTIAL, PASSKEY_REFUSED
from idp.auth.passwords import MAX_PASSWORD_LENGTH
from idp.errors import InvalidCredentials, Overloaded, RateLimited
from idp.i18n import N_, select_locale
from idp.security import safe_next
from idp.services.accounts import CodeRequired, LinkInvalid, ResetLink, WeakPassword
from idp.services.mfa import InvalidCode
from idp.services.passkeys import PasskeyRefused
from idp.services.users import MAX_EMAIL_LENGTH
from idp.templating import render
from idp.web import messages
from idp.web.errors import error_page
from idp.web.forms import page_form
from idp.web.request import client_ip, services, session_cookie

log = logging.getLogger(__name__)

CHANGE_FIELDS = {"current_password": MAX_PASSWORD_LENGTH, "password": MAX_PASSWORD_LENGTH, "csrf_token": 128}
FORGOT_FIELDS = {"email": MAX_EMAIL_LENGTH, "next": 2000, "csrf_token": 128}
RESET_FIELDS = {
    "token": 100,
    "password": MAX_PASSWORD_LENGTH,
    "code": 64,
    "csrf_token": 128,
    # "Use a passkey": the browser's answer and the proof of the challenge it answers (PasskeyService).
    "credential": MAX_CREDENTIAL,
    "passkey_proof": 200,
}

UNAVAILABLE = N_("Not available")
UNAVAILABLE_TEXT = N_("Resetting a password by email is not available on this service. Contact support for help.")
LINK_INVALID = N_("This link does not work")
LINK_INVALID_TEXT = N_(
    "The link has already been used, has expired, or was copied incompletely. Ask for a new one and use the newest."
)
WRONG_CURRENT = N_("Your current password is not correct.")
CODE_NEEDED = N_("Enter a code from your authenticator app or one of your backup codes.")


def unavailable(request: Request) -> Response:
    return error_page(request, 404, UNAVAILABLE, UNAVAILABLE_TEXT)


def link_invalid(request: Request, *, kind: str = "") -> Response:
    """One page for every dead email link; `kind` "email_change" offers a new change instead of new links."""
    context = {"title": LINK_INVALID, "message": LINK_INVALID_TEXT, "kind": kind}
    return render(request, "account/link_invalid.html", context, status_code=400)


async def forgot_page(request: Request) -> Response:
    """Ask for the email address."""
    if not services(request).accounts.enabled:
        return unavailable(request)
    next_url = safe_next(request.query_params.get("next"), default="")
    email = request.query_params.get("login_hint", "")[:MAX_EMAIL_LENGTH]
    return render(request, "account/password_forgot.html", {"next": next_url, "email": email, "error": None})


async def forgot_submit(request: Request) -> Response:
    """Always the same answer; the link goes out only when the address has an account."""
    idp = services(request)
    if not idp.accounts.enabled:
        return unavailable(request)
    form = await page_form(request, FORGOT_FIELDS)
    if isinstance(form, Response):
        return form
    next_url = safe_next(form["next"], default="")
    email = form["email"].strip()
    if not email:
        return render(
            request,
            "account/password_forgot.html",
            {"next": next_url, "email": "", "error": N_("Enter your email address.")},
            status_code=400,
        )
    try:
        await idp.accounts.request_reset(
            email, locale=select_locale(request), client_ip=client_ip(request), next_url=next_url
        )
    except RateLimited as exc:
        log.info("password reset refused by the limit", extra={"scope": exc.scope})
        return rate_limited_page(request, exc)
    return render(request, "account/password_forgot_sent.html", {"email": email, "next": next_url})


async def _reset_form(
    request: Request,
    token: str,
    link: ResetLink,
    *,
    error: str | None = None,
    values: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    # A person with passkeys is offered "Use a passkey" beside the code, with a challenge bound to this link.
    passkey = await services(request).accounts.reset_options(link, token)
    return render(
        request,
        "account/password_reset.html",
        {
            "token": token,
            "needs_code": link.needs_code,
            "error": error,
            "error_values": values or {},
            "passkey_options": passkey[0] if passkey else None,
            "passkey_proof": passkey[1] if passkey else "",
        },
        status_code=status,
    )


async def reset_page(request: Request) -> Response:
    """The link from the email: a form for the new password (and a code or a passkey, with two-step
    verification on).

    Works with email off too: then only support staff make links (`idp users reset-link`)."""
    idp = services(request)
    token = request.query_params.get("token", "")
    try:
        link = await idp.accounts.check_reset_link(token)
    except LinkInvalid:
        return link_invalid(request)
    return await _reset_form(request, token, link)


async def reset_submit(request: Request) -> Response:
    idp = services(request)
    form = await page_form(request, RESET_FIELDS)
    if isinstance(form, Response):
        return form
    token = form["token"]
    try:
        link = await idp.accounts.check_reset_link(token)
        next_url = await idp.accounts.reset_password(
            token,
            form["password"],
            form["code"],
            client_ip=client_ip(request),
            credential=form["credential"],
            passkey_proof=form["passkey_proof"],
        )
    except LinkInvalid:
        return link_invalid(request)
    except WeakPassword as exc:
        return await _reset_form(request, token, link, error=exc.message, values=exc.values, status=400)
    except CodeRequired:
        return await _reset_form(request, token, link, error=CODE_NEEDED, status=400)
    except PasskeyRefused:
        return await _reset_form(request, token, link, error=PASSKEY_REFUSED, status=400)
    except InvalidCode:
        return await _reset_form(request, token, link, error=messages.WRONG_CODE, status=400)
    except RateLimited as exc:
        return rate_limited_page(request, exc)
    except Overloaded as exc:
        return error_page(
            request, 503, messages.BUSY, messages.BUSY_TEXT, headers={"Retry-After": str(exc.retry_after)}
        )
    login_url = "/login?" + urlencode({"next": next_url} if next_url else {}) if next_url else "/login"
    return render(request, "account/password_reset_done.html", {"login_url": login_url})


async def change_page(request: Request) -> Response:
    """`/account/password`: change the password, giving the current one."""
    active = await services(request).sessions.current(session_cookie(request))
    if active is None:
        return RedirectResponse("/login?" + urlencode({"next": "/account/password"}), status_code=303)
    return render(request, "account/password_change.html", {"error": None, "error_values": {}, "done": False})


async def change_submit(request: Request) -> Response:
    idp = services(request)
    form = await page_form(request, CHANGE_FIELDS)
    if isinstance(form, Response):
        return form
    active = await idp.sessions.current(session_cookie(request))
    if active is None:
        return RedirectResponse("/login?" + urlencode({"next": "/account/password"}), status_code=303)

    def again(error: str, values: dict[str, Any] | None = None) -> Response:
        context = {"error": error, "error_values": values or {}, "done": False}
        return render(request, "account/password_change.html", context, status_code=400)

    try:
        await idp.accounts.change_password(
            active,
            form["current_password"],
            form["password"],
            client_ip=client_ip(request),
            device=request.cookies.get(idp.cookies.device_name),
        )
    except InvalidCredentials:
        return again(WRONG_CURRENT)
    except WeakPassword as exc:
        return again(exc.message, exc.values)
    except RateLimited as exc:
        return rate_limited_page(request, exc)
    except Overloaded as exc:
        return error_page(
            request, 503, messages.BUSY, messages.BUSY_TEXT, headers={"Retry-After": str(exc.retry_after)}
        )
    return render(request, "account/password_change.html", {"error": None, "error_values": {}, "done": True})
