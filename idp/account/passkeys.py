"""`/account/security/passkeys` (INTERFACE §4): a person's passkeys listed, added, named and removed, and the
"Use a passkey" answer to the second step at `/login/verify/passkey`.

The pages work as plain forms: a small script of our own (static/passkeys.js) asks the browser for the passkey and
puts its answer in a hidden field; without the script the page says what to do instead.
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from idp.account.login import login_form, rate_limited_page
from idp.account.security import backup_codes_url
from idp.errors import Conflict, NotFound, RateLimited
from idp.i18n import N_
from idp.oidc.limits import MAX_CONTINUATION
from idp.security import safe_next
from idp.services.mfa import InvalidCode
from idp.services.passkeys import InvalidName, PasskeyRefused, ReauthRequired, SecondFactorRequired
from idp.services.sessions import ActiveSession, SessionEnded
from idp.templating import render
from idp.web import messages
from idp.web.errors import error_page
from idp.web.forms import page_form
from idp.web.params import read_query_leniently
from idp.web.redirects import login_url, to_login
from idp.web.request import client_ip, services, session_cookie

HERE = "/account/security/passkeys"
# A registration answer with attestation "none" is well under 2 kB; room for large keys and extensions.
MAX_CREDENTIAL = 16_000
ADD_FIELDS = {"csrf_token": 128, "name": 200, "credential": MAX_CREDENTIAL}
RENAME_FIELDS = {"csrf_token": 128, "id": 40, "name": 200}
REMOVE_FIELDS = {"csrf_token": 128, "id": 40, "code": 64}
SIGNIN_FIELDS = {"csrf_token": 128, "next": MAX_CONTINUATION, "credential": MAX_CREDENTIAL}
QUERY = {"done": 20}

PASSKEY_REFUSED = N_("The passkey could not be checked. Try again, or use another way to verify.")
PASSKEY_NOT_ADDED = N_("The passkey was not added. Try again.")
PASSKEY_EXISTS = N_("This passkey is already added.")
TOO_MANY = N_("You cannot add more passkeys. Remove one first.")
NAME_REQUIRED = N_("Give the passkey a name.")
NO_SUCH_PASSKEY = N_("That passkey is not one of yours.")
NOTICES = {
    "added": N_("The passkey was added."),
    "renamed": N_("The passkey was renamed."),
    "removed": N_("The passkey was removed."),
}


async def _signed_in(request: Request) -> ActiveSession | None:
    return await services(request).sessions.current(session_cookie(request))


async def _page(
    request: Request,
    active: ActiveSession,
    *,
    error: str | None = None,
    failed: str | None = None,
    notice: str | None = None,
    status: int = 200,
) -> Response:
    """The list, and the add form with a fresh challenge when this session may add one (else what to do first)."""
    idp = services(request)
    keys = await idp.passkeys.list_passkeys(active.user.id)
    mfa = await idp.mfa.status(active.user.id)
    options: str | None = None
    blocked: str | None = None
    try:
        options = await idp.passkeys.registration_options(active)
    except ReauthRequired:
        blocked = "reauth"
    except SecondFactorRequired:
        blocked = "second_factor"
    except Conflict:
        blocked = "too_many"
    response = render(
        request,
        "account/passkeys.html",
        {
            "passkeys": keys,
            "mfa": mfa,
            "options": options,
            "blocked": blocked,
            "reauth_url": login_url(HERE, reauth=True),
            "verify_url": "/login/verify?" + urlencode({"next": HERE}),
            # Removing the only passkey of a person without an authenticator app turns two-step verification off.
            "last_factor": not mfa.totp and len(keys) == 1,
            "error": error,
            "failed": failed,
            "notice": notice,
        },
        status_code=status,
    )
    return response


async def passkeys_page(request: Request) -> Response:
    active = await _signed_in(request)
    if active is None:
        return to_login(HERE)
    notice = NOTICES.get(read_query_leniently(request, QUERY).get("done", ""))
    return await _page(request, active, notice=notice)


async def _form(request: Request, fields: dict[str, int]) -> tuple[ActiveSession | None, dict[str, str] | Response]:
    form = await page_form(request, fields)
    if isinstance(form, Response):
        return None, form
    active = await _signed_in(request)
    if active is None:
        return None, to_login(HERE)
    return active, form


async def add_submit(request: Request) -> Response:
    active, form = await _form(request, ADD_FIELDS)
    if active is None or isinstance(form, Response):
        assert isinstance(form, Response)
        return form
    idp = services(request)
    try:
        added = await idp.passkeys.add(active, form["credential"], form["name"], client_ip=client_ip(request))
    except ReauthRequired:
        return to_login(HERE, reauth=True)
    except SecondFactorRequired:
        return RedirectResponse("/login/verify?" + urlencode({"next": HERE}), status_code=303)
    except PasskeyRefused:
        return await _page(request, active, error=PASSKEY_NOT_ADDED, failed="add", status=400)
    except Conflict:
        return await _page(request, active, error=PASSKEY_EXISTS, failed="add", status=409)
    except SessionEnded:
        return to_login(HERE)
    if added.cookie is None or added.codes is None:
        return RedirectResponse(HERE + "?done=added", status_code=303)
    # The first passkey turned two-step verification on: the backup codes, shown as after enabling an app
    # (Post/Redirect/Get: they wait, sealed to the new session, for the page that shows them).
    response: Response = RedirectResponse(backup_codes_url("", "enabled"), status_code=303)
    idp.cookies.set(response, idp.cookies.session_name, added.cookie)
    return response


async def rename_submit(request: Request) -> Response:
    active, form = await _form(request, RENAME_FIELDS)
    if active is None or isinstance(form, Response):
        assert isinstance(form, Response)
        return form
    try:
        await services(request).passkeys.rename(active, form["id"], form["name"], client_ip=client_ip(request))
    except InvalidName:
        return await _page(request, active, error=NAME_REQUIRED, failed="rename:" + form["id"], status=400)
    except NotFound:
        return await _page(request, active, error=NO_SUCH_PASSKEY, status=404)
    return RedirectResponse(HERE + "?done=renamed", status_code=303)


async def remove_submit(request: Request) -> Response:
    active, form = await _form(request, REMOVE_FIELDS)
    if active is None or isinstance(form, Response):
        assert isinstance(form, Response)
        return form
    try:
        turned_off = await services(request).passkeys.remove(
            active, form["id"], form["code"], client_ip=client_ip(request)
        )
    except InvalidCode:
        return await _page(request, active, error=messages.WRONG_CODE, failed="remove:" + form["id"], status=400)
    except RateLimited as exc:
        return rate_limited_page(request, exc)
    except NotFound:
        return await _page(request, active, error=NO_SUCH_PASSKEY, status=404)
    except Conflict:
        return await _page(request, active, error=messages.ALREADY_OFF, status=409)
    if turned_off:
        return RedirectResponse("/account/security?done=disabled", status_code=303)
    return RedirectResponse(HERE + "?done=removed", status_code=303)


async def signin_submit(request: Request) -> Response:
    """ "Sign in with a passkey" on /login (IDP_PASSKEY_SIGNIN): a discoverable passkey with user verification
    alone signs the person in, `amr` ["hwk"|"swk", "mfa"]."""
    idp = services(request)
    if not idp.settings.passkey_signin:
        return error_page(request, 404, messages.NOT_FOUND, messages.NOT_FOUND_TEXT)
    form = await page_form(request, SIGNIN_FIELDS)
    if isinstance(form, Response):
        return form
    next_url = safe_next(form["next"])
    try:
        _, cookie, _ = await idp.passkeys.sign_in(
            form["credential"],
            request.cookies.get(idp.cookies.passkey_signin_name),
            client_ip=client_ip(request),
            user_agent=request.headers.get("user-agent", ""),
            previous_cookie=session_cookie(request),
        )
    except PasskeyRefused:
        idp.metrics.logins.labels("failure").inc()
        return await login_form(request, next_url=next_url, error=PASSKEY_REFUSED, status=400)
    except RateLimited as exc:
        idp.metrics.logins.labels("rate_limited").inc()
        return rate_limited_page(request, exc)
    idp.metrics.logins.labels("success").inc()
    response = RedirectResponse(next_url, status_code=303)
    idp.cookies.set(response, idp.cookies.session_name, cookie)
    idp.cookies.clear(response, idp.cookies.passkey_signin_name)
    return response
