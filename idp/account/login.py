"""`/login` (email + password) and `/logout` (INTERFACE §4)."""

from __future__ import annotations

import logging
import math
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from idp.auth.passwords import MAX_PASSWORD_LENGTH
from idp.errors import InvalidCredentials, Overloaded, RateLimited, UnreadableInput
from idp.oidc.limits import MAX_CONTINUATION
from idp.security import safe_next
from idp.services.ratelimit import DEVICE_COOKIE_SECONDS
from idp.services.sessions import PASSKEY_CHALLENGE
from idp.services.users import MAX_EMAIL_LENGTH
from idp.templating import render
from idp.web import messages
from idp.web.board import board_for
from idp.web.errors import csrf_failed, error_page
from idp.web.forms import page_form
from idp.web.params import read_form, read_query_leniently
from idp.web.request import client_ip, services, session_cookie

log = logging.getLogger(__name__)

LOGIN_FIELDS = {
    "username": MAX_EMAIL_LENGTH,
    "password": MAX_PASSWORD_LENGTH,
    "csrf_token": 128,
    "next": MAX_CONTINUATION,
}

# /login's query: where to go next, a fresh sign-in asked for, the email the relying party suggests. A value
# that is too long or malformed is left out, as if not given.
PASSKEY_CHALLENGE_SECONDS = int(PASSKEY_CHALLENGE.total_seconds())

LOGIN_QUERY = {"next": MAX_CONTINUATION, "reauth": 1, "login_hint": MAX_EMAIL_LENGTH}


def rate_limited_page(request: Request, exc: RateLimited) -> Response:
    """429 with Retry-After and a page saying when to try again (the precise reason stays in the log)."""
    services(request).metrics.lockout(exc.scope)
    return render(
        request,
        "login/rate_limited.html",
        {"minutes": math.ceil(exc.retry_after / 60), "retry_after": exc.retry_after},
        status_code=429,
        headers={"Retry-After": str(exc.retry_after)},
    )


async def _login_form(
    request: Request,
    *,
    next_url: str,
    email: str = "",
    error: str | None = None,
    status: int = 200,
    signup: bool = False,
    confirm: bool = False,
) -> Response:
    """The form; `confirm`: a signed-in person asked to sign in again ("Confirm it's you", email filled in)."""
    idp = services(request)
    # "Sign in with a passkey" (IDP_PASSKEY_SIGNIN): options for the browser, and their challenge in a cookie.
    options, proof = idp.passkeys.signin_options() if idp.settings.passkey_signin else (None, "")
    board = await board_for(request, next_url)
    response = render(
        request,
        "login/login.html",
        {
            "next": next_url,
            "email": email,
            "error": error,
            "signup": signup,
            "confirm": confirm,
            "board": board,
            "passkey_options": options,
        },
        status_code=status,
    )
    if options is not None:
        idp.cookies.set(response, idp.cookies.passkey_signin_name, proof, max_age=PASSKEY_CHALLENGE_SECONDS)
    return response


# The sign-in page as other sign-in handlers show it again ("Sign in with a passkey" refused).
login_form = _login_form


async def login_page(request: Request) -> Response:
    """Show the sign-in form; someone already signed in goes straight on."""
    query = read_query_leniently(request, LOGIN_QUERY)
    next_url = safe_next(query.get("next"))
    active = await services(request).sessions.current(session_cookie(request))
    # reauth=1: the relying party asked for a fresh sign-in (prompt=login, max_age), so show the form.
    if active is not None and query.get("reauth") != "1":
        return RedirectResponse(next_url, status_code=303)
    if active is not None:
        # A fresh sign-in of the person already here: not a blank form, but their own email filled in.
        return await _login_form(request, next_url=next_url, email=active.user.email, confirm=True)
    email = query.get("login_hint", "")
    signup = await services(request).accounts.signup_allowed(next_url)
    return await _login_form(request, next_url=next_url, email=email, signup=signup)


async def login_submit(request: Request) -> Response:
    """Check the password; on success a fresh session cookie and a redirect inside idp."""
    idp = services(request)
    try:
        form = await read_form(request, LOGIN_FIELDS)
    except UnreadableInput as exc:
        idp.metrics.logins.labels("invalid").inc()
        log.info("unreadable sign-in form", extra={"reason": str(exc)})
        return await _login_form(request, next_url="/account", error=messages.FORM_UNREADABLE, status=exc.status)
    if not idp.csrf.check(request, form["csrf_token"]):
        return csrf_failed(request)
    next_url = safe_next(form["next"])
    email = form["username"].strip()
    if not email or not form["password"]:
        idp.metrics.logins.labels("invalid").inc()
        return await _login_form(request, next_url=next_url, email=email, error=messages.GENERIC_FAILURE, status=400)

    try:
        result = await idp.login.sign_in_with_password(
            email,
            form["password"],
            client_ip=client_ip(request),
            user_agent=request.headers.get("user-agent", ""),
            previous_cookie=session_cookie(request),
            device=request.cookies.get(idp.cookies.device_name),
        )
    except InvalidCredentials as exc:
        idp.metrics.logins.labels("failure").inc()
        log.info("sign-in failed", extra={"reason": str(exc)})
        # Someone signed in who was asked to confirm it is them keeps seeing that, not a stranger's sign-in form.
        confirm = await idp.sessions.current(session_cookie(request)) is not None
        return await _login_form(
            request, next_url=next_url, email=email, error=messages.GENERIC_FAILURE, status=400, confirm=confirm
        )
    except RateLimited as exc:
        idp.metrics.logins.labels("rate_limited").inc()
        log.info("sign-in refused by the attempt limit", extra={"scope": exc.scope})
        return rate_limited_page(request, exc)
    except Overloaded as exc:
        idp.metrics.logins.labels("overloaded").inc()
        return error_page(
            request, 503, messages.BUSY, messages.BUSY_TEXT, headers={"Retry-After": str(exc.retry_after)}
        )

    if result.pending:
        idp.metrics.logins.labels("second_step").inc()
        target = "/login/verify?" + urlencode({"next": next_url})
    else:
        idp.metrics.logins.labels("success").inc()
        target = next_url
    response = RedirectResponse(target, status_code=303)
    idp.cookies.set(response, idp.cookies.session_name, result.session_cookie)
    idp.cookies.set(response, idp.cookies.device_name, result.device_cookie, max_age=DEVICE_COOKIE_SECONDS)
    return response


async def logout_page(request: Request) -> Response:
    """A confirmation form: signing out is a POST so that no other site can sign a person out."""
    sessions = services(request).sessions
    active = await sessions.current(session_cookie(request))
    boards = await sessions.job_boards(active)
    return render(request, "login/logout.html", {"signed_in": active is not None, "boards": boards})


async def logout_submit(request: Request) -> Response:
    idp = services(request)
    form = await page_form(request, {"csrf_token": 128})
    if isinstance(form, Response):
        return form
    boards = await idp.sessions.sign_out(session_cookie(request), client_ip=client_ip(request), audit=idp.audit)
    response = render(request, "login/logged_out.html", {"boards": boards})
    idp.cookies.clear(response, idp.cookies.session_name)
    return response
