"""`/account/security` and enrollment at `/account/security/totp` (INTERFACE §4): turn two-step verification
on and off, and manage backup codes."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from idp.account.login import rate_limited_page
from idp.errors import Conflict, RateLimited, UnreadableInput
from idp.i18n import select_locale, translations
from idp.oidc.limits import MAX_CONTINUATION
from idp.security import safe_next
from idp.services.mfa import InvalidCode, NotEnrolling
from idp.services.sessions import ActiveSession
from idp.templating import render
from idp.web import messages
from idp.web.errors import csrf_failed, error_page
from idp.web.params import read_form, read_query_leniently
from idp.web.request import client_ip, services, session_cookie

FIELDS = {"code": 64, "csrf_token": 128, "next": MAX_CONTINUATION}
# After a change the page says what was done (`done`); enrollment may carry a continuation (`next`).
QUERY = {"done": 20, "next": MAX_CONTINUATION}


async def _signed_in(request: Request) -> ActiveSession | None:
    return await services(request).sessions.current(session_cookie(request))


def _to_login(path: str, *, reauth: bool = False) -> Response:
    params = {"next": path}
    if reauth:
        params["reauth"] = "1"
    return RedirectResponse("/login?" + urlencode(params), status_code=303)


async def _security_page(
    request: Request,
    active: ActiveSession,
    *,
    error: str | None = None,
    failed: str | None = None,
    notice: str | None = None,
    status: int = 200,
) -> Response:
    """`failed` names the form ("regenerate" or "disable") whose code was wrong: its error shows beside it."""
    mfa = await services(request).mfa.status(active.user.id)
    return render(
        request,
        "account/security.html",
        {"user": active.user, "mfa": mfa, "error": error, "failed": failed, "notice": notice},
        status_code=status,
    )


async def security_page(request: Request) -> Response:
    active = await _signed_in(request)
    if active is None:
        return _to_login("/account/security")
    notice = {"enabled": "on", "disabled": "off"}.get(read_query_leniently(request, QUERY).get("done", ""))
    return await _security_page(request, active, notice=notice)


# -- enrollment -------------------------------------------------------------------------------------------


async def _enroll_page(
    request: Request, active: ActiveSession, next_url: str, *, error: str | None = None, status: int = 200
) -> Response:
    idp = services(request)
    enrollment = await idp.mfa.start_enrollment(active)
    return render(
        request,
        "account/totp.html",
        {"enrollment": enrollment, "next": next_url, "error": error, "issuer_name": idp.mfa.issuer_name},
        status_code=status,
    )


async def totp_page(request: Request) -> Response:
    """The QR code, the setup key and a code field; the pending secret survives refreshes."""
    idp = services(request)
    next_url = safe_next(read_query_leniently(request, QUERY).get("next"), default="")
    here = "/account/security/totp" + ("?" + urlencode({"next": next_url}) if next_url else "")
    active = await _signed_in(request)
    if active is None:
        return _to_login(here)
    if not idp.mfa.is_recent(active):
        return _to_login(here, reauth=True)
    try:
        return await _enroll_page(request, active, next_url)
    except Conflict:
        return RedirectResponse("/account/security", status_code=303)


async def totp_submit(request: Request) -> Response:
    idp = services(request)
    try:
        form = await read_form(request, FIELDS)
    except UnreadableInput as exc:
        return error_page(request, exc.status, messages.BAD_REQUEST, messages.FORM_UNREADABLE)
    if not idp.csrf.check(request, form["csrf_token"]):
        return csrf_failed(request)
    next_url = safe_next(form["next"], default="")
    active = await _signed_in(request)
    if active is None:
        return _to_login("/account/security/totp")
    if not idp.mfa.is_recent(active):
        return _to_login("/account/security/totp", reauth=True)
    try:
        cookie, codes = await idp.mfa.confirm_enrollment(active, form["code"], client_ip=client_ip(request))
    except InvalidCode:
        return await _enroll_page(request, active, next_url, error=messages.WRONG_CODE, status=400)
    except NotEnrolling:
        return await _enroll_page(request, active, next_url, error=messages.SETUP_EXPIRED, status=400)
    except RateLimited as exc:
        return rate_limited_page(request, exc)
    except Conflict:
        return RedirectResponse("/account/security", status_code=303)
    response = render(request, "account/backup_codes.html", {"codes": codes, "next": next_url, "fresh": "enabled"})
    idp.cookies.set(response, idp.cookies.session_name, cookie)
    return response


# -- disable and regenerate -------------------------------------------------------------------------------


async def _code_action(request: Request) -> tuple[ActiveSession | None, dict[str, str] | Response]:
    idp = services(request)
    try:
        form = await read_form(request, FIELDS)
    except UnreadableInput as exc:
        return None, error_page(request, exc.status, messages.BAD_REQUEST, messages.FORM_UNREADABLE)
    if not idp.csrf.check(request, form["csrf_token"]):
        return None, csrf_failed(request)
    active = await _signed_in(request)
    if active is None:
        return None, _to_login("/account/security")
    return active, form


async def disable_submit(request: Request) -> Response:
    active, form = await _code_action(request)
    if active is None or isinstance(form, Response):
        assert isinstance(form, Response)
        return form
    try:
        await services(request).mfa.disable(active, form["code"], client_ip=client_ip(request))
    except InvalidCode:
        return await _security_page(request, active, error=messages.WRONG_CODE, failed="disable", status=400)
    except RateLimited as exc:
        return rate_limited_page(request, exc)
    except Conflict:
        return await _security_page(request, active, error=messages.ALREADY_OFF, status=409)
    return RedirectResponse("/account/security?done=disabled", status_code=303)


async def regenerate_submit(request: Request) -> Response:
    active, form = await _code_action(request)
    if active is None or isinstance(form, Response):
        assert isinstance(form, Response)
        return form
    try:
        codes = await services(request).mfa.regenerate(active, form["code"], client_ip=client_ip(request))
    except InvalidCode:
        return await _security_page(request, active, error=messages.WRONG_CODE, failed="regenerate", status=400)
    except RateLimited as exc:
        return rate_limited_page(request, exc)
    except Conflict:
        return await _security_page(request, active, error=messages.IS_OFF, status=409)
    return render(request, "account/backup_codes.html", {"codes": codes, "next": "", "fresh": "regenerated"})


# -- the codes just generated, again: download and print ----------------------------------------------------


async def _fresh(request: Request) -> tuple[ActiveSession | None, list[str] | None]:
    active = await _signed_in(request)
    if active is None:
        return None, None
    return active, await services(request).mfa.fresh_codes(active)


async def download_codes(request: Request) -> Response:
    """Exactly the codes just shown, one per line after a title line, as a text/plain attachment."""
    active, codes = await _fresh(request)
    if active is None:
        return _to_login("/account/security")
    if codes is None:
        return error_page(request, 410, messages.NO_CODES, messages.NO_CODES_TEXT)
    title = translations(select_locale(request)).gettext(messages.DOWNLOAD_TITLE) % {
        "email": active.user.email,
        "site": services(request).mfa.issuer_name,
    }
    body = title + "\n" + "\n".join(codes) + "\n"
    return PlainTextResponse(
        body, headers={"Content-Disposition": 'attachment; filename="backup-codes.txt"', "Cache-Control": "no-store"}
    )


async def print_codes(request: Request) -> Response:
    active, codes = await _fresh(request)
    if active is None:
        return _to_login("/account/security")
    if codes is None:
        return error_page(request, 410, messages.NO_CODES, messages.NO_CODES_TEXT)
    return render(request, "account/backup_codes_print.html", {"codes": codes, "user": active.user})
