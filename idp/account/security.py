"""`/account/security` and enrollment at `/account/security/totp` (INTERFACE §4): turn two-step verification
on and off, and manage backup codes."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from idp.account.login import rate_limited_page
from idp.errors import Conflict, RateLimited
from idp.i18n import select_locale, translations
from idp.oidc.limits import MAX_CONTINUATION
from idp.security import safe_next
from idp.services.mfa import InvalidCode, NotEnrolling
from idp.services.sessions import ActiveSession, SessionEnded
from idp.templating import render
from idp.web import messages
from idp.web.board import board_for
from idp.web.errors import error_page
from idp.web.forms import page_form
from idp.web.params import read_query_leniently
from idp.web.redirects import to_login
from idp.web.request import client_ip, services, session_cookie

FIELDS = {"code": 64, "csrf_token": 128, "next": MAX_CONTINUATION}
SAVED_FIELDS = {"saved": 10, "csrf_token": 128, "next": MAX_CONTINUATION, "done": 20}
# After a change the page says what was done (`done`); enrollment may carry a continuation (`next`); a job board
# linking to "Two-step verification" names itself (`client_id`) and where to go back to (`return_to`).
QUERY = {"done": 20, "next": MAX_CONTINUATION, "client_id": 64, "return_to": 2000}


def backup_codes_url(next_url: str, done: str = "") -> str:
    """The page that shows the backup codes just made (the GET of Post/Redirect/Get)."""
    params = {k: v for k, v in (("next", next_url), ("done", done)) if v}
    return "/account/security/backup-codes" + ("?" + urlencode(params) if params else "")


@dataclass(frozen=True)
class BackTo:
    """A "Back to <board>" link: the URL was checked against the board's registered redirect URIs."""

    name: str
    url: str


async def _back_to(request: Request, query: dict[str, str]) -> BackTo | None:
    """`return_to` when it belongs to the job board `client_id` names; anything else is ignored (never a link to
    an address the board did not register: no open redirect)."""
    client_id, return_to = query.get("client_id", ""), query.get("return_to", "")
    if not client_id or not return_to:
        return None
    client = await services(request).clients.find(client_id)
    if client is None or not client.allows_return_to(return_to):
        return None
    return BackTo(client.display_name, return_to)


async def _signed_in(request: Request) -> ActiveSession | None:
    return await services(request).sessions.current(session_cookie(request))


async def _security_page(
    request: Request,
    active: ActiveSession,
    *,
    error: str | None = None,
    failed: str | None = None,
    notice: str | None = None,
    status: int = 200,
    back: BackTo | None = None,
) -> Response:
    """`failed` names the form ("regenerate" or "disable") whose code was wrong: its error shows beside it."""
    mfa = await services(request).mfa.status(active.user.id)
    here = "/account/security"
    if back is not None:
        here += "?" + urlencode({"client_id": request.query_params.get("client_id", ""), "return_to": back.url})
    return render(
        request,
        "account/security.html",
        {
            "user": active.user,
            "mfa": mfa,
            "error": error,
            "failed": failed,
            "notice": notice,
            "back": back,
            "here": here,
        },
        status_code=status,
    )


async def security_page(request: Request) -> Response:
    query = read_query_leniently(request, QUERY)
    back = await _back_to(request, query)
    active = await _signed_in(request)
    if active is None:
        here = "/account/security"
        if back is not None:
            here += "?" + urlencode({"client_id": query["client_id"], "return_to": back.url})
        return to_login(here)
    notice = {"enabled": "on", "disabled": "off"}.get(query.get("done", ""))
    return await _security_page(request, active, notice=notice, back=back)


# -- enrollment -------------------------------------------------------------------------------------------


async def _enroll_page(
    request: Request, active: ActiveSession, next_url: str, *, error: str | None = None, status: int = 200
) -> Response:
    idp = services(request)
    enrollment = await idp.mfa.start_enrollment(active)
    board = await board_for(request, next_url)
    return render(
        request,
        "account/totp.html",
        {
            "enrollment": enrollment,
            "next": next_url,
            "error": error,
            "issuer_name": idp.mfa.issuer_name,
            "board": board,
        },
        status_code=status,
    )


async def totp_page(request: Request) -> Response:
    """The QR code, the setup key and a code field; the pending secret survives refreshes."""
    idp = services(request)
    next_url = safe_next(read_query_leniently(request, QUERY).get("next"), default="")
    here = "/account/security/totp" + ("?" + urlencode({"next": next_url}) if next_url else "")
    active = await _signed_in(request)
    if active is None:
        return to_login(here)
    if not idp.mfa.is_recent(active):
        return to_login(here, reauth=True)
    try:
        return await _enroll_page(request, active, next_url)
    except Conflict:
        return RedirectResponse("/account/security", status_code=303)


async def totp_submit(request: Request) -> Response:
    idp = services(request)
    form = await page_form(request, FIELDS)
    if isinstance(form, Response):
        return form
    next_url = safe_next(form["next"], default="")
    here = "/account/security/totp" + ("?" + urlencode({"next": next_url}) if next_url else "")
    active = await _signed_in(request)
    if active is None:
        return to_login(here)
    if not idp.mfa.is_recent(active):
        return to_login(here, reauth=True)
    try:
        cookie, _ = await idp.mfa.confirm_enrollment(active, form["code"], client_ip=client_ip(request))
    except InvalidCode:
        return await _enroll_page(request, active, next_url, error=messages.WRONG_CODE, status=400)
    except NotEnrolling:
        return await _enroll_page(request, active, next_url, error=messages.SETUP_EXPIRED, status=400)
    except RateLimited as exc:
        return rate_limited_page(request, exc)
    except Conflict:
        return RedirectResponse("/account/security", status_code=303)
    except SessionEnded:
        # Ended while the code was checked: nothing was turned on.
        return to_login(here)
    # Post/Redirect/Get: the codes wait, sealed to the new session, for the page that shows them.
    response = RedirectResponse(backup_codes_url(next_url, "enabled"), status_code=303)
    idp.cookies.set(response, idp.cookies.session_name, cookie)
    return response


# -- disable and regenerate -------------------------------------------------------------------------------


async def _code_action(request: Request) -> tuple[ActiveSession | None, dict[str, str] | Response]:
    form = await page_form(request, FIELDS)
    if isinstance(form, Response):
        return None, form
    active = await _signed_in(request)
    if active is None:
        return None, to_login("/account/security")
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
    del codes  # sealed to this session: the page after the redirect shows them
    return RedirectResponse(backup_codes_url("", "regenerated"), status_code=303)


# -- the codes just generated: shown, downloaded, printed, then confirmed saved ------------------------------


async def _codes_page(
    request: Request, active: ActiveSession, codes: list[str], next_url: str, done: str, *, unconfirmed: bool = False
) -> Response:
    return render(
        request,
        "account/backup_codes.html",
        {"codes": codes, "next": next_url, "fresh": done, "unconfirmed": unconfirmed},
        status_code=400 if unconfirmed else 200,
    )


async def codes_page(request: Request) -> Response:
    """GET /account/security/backup-codes: the codes this session just made (sealed to it, never in a URL), until
    the person says they saved them or a few minutes pass; then back to the security page."""
    query = read_query_leniently(request, QUERY)
    next_url = safe_next(query.get("next"), default="")
    active, codes = await _fresh(request)
    if active is None:
        return to_login("/account/security")
    if codes is None:
        return RedirectResponse(next_url or "/account/security", status_code=303)
    return await _codes_page(request, active, codes, next_url, query.get("done", ""))


async def codes_saved_submit(request: Request) -> Response:
    """POST /account/security/backup-codes/saved: "I have saved these codes" ticked; the shown copy is dropped and
    the person goes on (to the job board, when they came from one)."""
    idp = services(request)
    form = await page_form(request, SAVED_FIELDS)
    if isinstance(form, Response):
        return form
    next_url = safe_next(form["next"], default="")
    active, codes = await _fresh(request)
    if active is None:
        return to_login("/account/security")
    if codes is not None and form["saved"] != "yes":
        return await _codes_page(request, active, codes, next_url, form["done"], unconfirmed=True)
    await idp.mfa.forget_fresh_codes(active)
    done = "?done=enabled" if form["done"] == "enabled" else ""
    return RedirectResponse(next_url or "/account/security" + done, status_code=303)


async def _fresh(request: Request) -> tuple[ActiveSession | None, list[str] | None]:
    active = await _signed_in(request)
    if active is None:
        return None, None
    return active, await services(request).mfa.fresh_codes(active)


async def download_codes(request: Request) -> Response:
    """Exactly the codes just shown, one per line after a title line, as a text/plain attachment."""
    active, codes = await _fresh(request)
    if active is None:
        return to_login("/account/security")
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
        return to_login("/account/security")
    if codes is None:
        return error_page(request, 410, messages.NO_CODES, messages.NO_CODES_TEXT)
    return render(request, "account/backup_codes_print.html", {"codes": codes, "user": active.user})
