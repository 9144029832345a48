"""`/login/verify` (authenticator code) and `/login/recovery` (backup code): the second step of signing in,
and the step-up of a password-only session when a relying party demands two factors (INTERFACE §3, §4)."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from idp.account.login import rate_limited_page
from idp.account.passkeys import PASSKEY_REFUSED
from idp.account.security import backup_codes_url
from idp.errors import RateLimited, UnreadableInput
from idp.oidc.limits import MAX_CONTINUATION
from idp.security import safe_next
from idp.services.mfa import InvalidCode
from idp.services.sessions import ActiveSession, SessionEnded
from idp.templating import render
from idp.web import messages
from idp.web.board import board_for
from idp.web.errors import csrf_failed
from idp.web.params import read_form, read_query_leniently
from idp.web.redirects import to_login
from idp.web.request import client_ip, services, session_cookie

FIELDS = {"code": 64, "csrf_token": 128, "next": MAX_CONTINUATION}
# The browser's answer to navigator.credentials.get: well under 2 kB; room for large signatures.
PASSKEY_FIELDS = {"credential": 16_000, "csrf_token": 128, "next": MAX_CONTINUATION}
QUERY = {"next": MAX_CONTINUATION}
PAGES = {"otp": "login/verify.html", "backup": "login/recovery.html"}


async def _who(request: Request) -> ActiveSession | None:
    """A session waiting for its second step, or a signed-in one that may step up."""
    return await services(request).sessions.current(session_cookie(request), allow_pending=True)


async def _form(
    request: Request,
    kind: str,
    next_url: str,
    error: str | None = None,
    status: int = 200,
    *,
    active: ActiveSession | None = None,
) -> Response:
    # A person with passkeys is offered "Use a passkey" beside the code (login/_passkey.html), with a challenge
    # for this session.
    options = await services(request).passkeys.authentication_options(active) if active and kind == "otp" else None
    board = await board_for(request, next_url)
    return render(
        request,
        PAGES[kind],
        {"next": next_url, "error": error, "board": board, "passkey_options": options},
        status_code=status,
    )


async def _page(request: Request, kind: str) -> Response:
    next_url = safe_next(read_query_leniently(request, QUERY).get("next"))
    active = await _who(request)
    if active is None:
        return to_login(next_url)
    if not (await services(request).mfa.status(active.user.id)).enabled:
        # Nothing to verify with: set up an authenticator first (that counts as the second factor).
        if active.pending:
            return to_login(next_url)
        return RedirectResponse("/account/security/totp?" + urlencode({"next": next_url}), status_code=303)
    return await _form(request, kind, next_url, active=active)


async def _submit(request: Request, kind: str) -> Response:
    idp = services(request)
    try:
        form = await read_form(request, FIELDS)
    except UnreadableInput as exc:
        return await _form(request, kind, "/account", error=messages.FORM_UNREADABLE, status=exc.status)
    if not idp.csrf.check(request, form["csrf_token"]):
        return csrf_failed(request)
    next_url = safe_next(form["next"])
    active = await _who(request)
    if active is None:
        return to_login(next_url)
    ip = client_ip(request)
    device = request.cookies.get(idp.cookies.device_name)
    try:
        factor = await idp.mfa.verify(active.user, form["code"], kind=kind, client_ip=ip, device=device)
    except InvalidCode:
        idp.metrics.logins.labels("failure").inc()
        idp.metrics.second_step.labels(kind, "failure").inc()
        return await _form(request, kind, next_url, error=messages.WRONG_CODE, status=400, active=active)
    except RateLimited as exc:
        idp.metrics.logins.labels("rate_limited").inc()
        idp.metrics.second_step.labels(kind, "rate_limited").inc()
        return rate_limited_page(request, exc)
    try:
        cookie, _ = await idp.mfa.complete_sign_in(active, factor, client_ip=ip, device=device)
    except SessionEnded:
        # Ended while the code was checked (a password reset, an operator): start again from the password.
        return to_login(next_url)
    idp.metrics.logins.labels("success").inc()
    idp.metrics.second_step.labels(kind, "success").inc()
    # Someone whose authenticator came with an import gets backup codes now, once.
    first_codes = await idp.mfa.issue_first_codes(active.user, cookie, client_ip=ip) if kind == "otp" else None
    if first_codes:
        # Post/Redirect/Get: the codes wait, sealed to this session, for the page that shows them.
        response: Response = RedirectResponse(backup_codes_url(next_url), status_code=303)
    elif kind == "backup":
        response = render(
            request,
            "login/recovery_done.html",
            {"next": next_url, "left": factor.backup_codes_left, "few": factor.backup_codes_left <= 2},
        )
    else:
        response = RedirectResponse(next_url, status_code=303)
    idp.cookies.set(response, idp.cookies.session_name, cookie)
    return response


async def verify_page(request: Request) -> Response:
    return await _page(request, "otp")


async def verify_submit(request: Request) -> Response:
    return await _submit(request, "otp")


async def recovery_page(request: Request) -> Response:
    return await _page(request, "backup")


async def recovery_submit(request: Request) -> Response:
    return await _submit(request, "backup")


async def passkey_submit(request: Request) -> Response:
    """ "Use a passkey": the assertion answers this session's challenge with one of the person's own passkeys."""
    idp = services(request)
    try:
        form = await read_form(request, PASSKEY_FIELDS)
    except UnreadableInput as exc:
        return await _form(request, "otp", "/account", error=messages.FORM_UNREADABLE, status=exc.status)
    if not idp.csrf.check(request, form["csrf_token"]):
        return csrf_failed(request)
    next_url = safe_next(form["next"])
    active = await _who(request)
    if active is None:
        return to_login(next_url)
    ip = client_ip(request)
    device = request.cookies.get(idp.cookies.device_name)
    try:
        factor = await idp.passkeys.verify(active, form["credential"], client_ip=ip, device=device)
    except InvalidCode:
        idp.metrics.logins.labels("failure").inc()
        idp.metrics.second_step.labels("passkey", "failure").inc()
        return await _form(request, "otp", next_url, error=PASSKEY_REFUSED, status=400, active=active)
    except RateLimited as exc:
        idp.metrics.logins.labels("rate_limited").inc()
        idp.metrics.second_step.labels("passkey", "rate_limited").inc()
        return rate_limited_page(request, exc)
    try:
        cookie, _ = await idp.mfa.complete_sign_in(active, factor, client_ip=ip, device=device)
    except SessionEnded:
        return to_login(next_url)
    idp.metrics.logins.labels("success").inc()
    idp.metrics.second_step.labels("passkey", "success").inc()
    response = RedirectResponse(next_url, status_code=303)
    idp.cookies.set(response, idp.cookies.session_name, cookie)
    return response
