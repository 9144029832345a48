"""Who may enter the console: a signed-in person holding a role, in a session with `acr` `mfa`; destructive
actions also need a sign-in within the last 15 minutes (the same rule as enrolling an authenticator)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from idp.services.login import amr_and_acr
from idp.services.sessions import ActiveSession
from idp.web import messages
from idp.web.errors import error_page
from idp.web.forms import page_form
from idp.web.redirects import to_login
from idp.web.request import client_ip, services, session_cookie


@dataclass(frozen=True)
class Staff:
    """A staff member inside the console: their session and roles."""

    active: ActiveSession
    roles: tuple[str, ...]
    client_ip: str

    @property
    def actor(self) -> str:
        """How the audit log names them (their account id never changes; the email is for people reading it)."""
        return f"staff:{self.active.user.id}:{self.active.user.email}"

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


def _redirect(path: str, **params: str) -> Response:
    return RedirectResponse(path + "?" + urlencode(params), status_code=303)


async def enter(request: Request, here: str, *, admin: bool = False, recent: bool = False) -> Staff | Response:
    """The staff member behind the request, or where they must go first.

    Anonymous: the sign-in page, then back to `here`. Signed in without a role (or without `admin` on an admin
    page): 403. A password-only session: the second step (enrollment first when they have no authenticator).
    `recent` and the sign-in older than 15 minutes: sign in again, then back to `here`."""
    idp = services(request)
    active = await idp.sessions.current(session_cookie(request), allow_pending=True)
    if active is None:
        return to_login(here)
    if active.pending:
        # The password is checked and the second step is not done yet: finish that, not the password again.
        return _redirect("/login/verify", next=here)
    roles = tuple(await idp.users.roles(active.user.id))
    if not roles or (admin and "admin" not in roles):
        return error_page(request, 403, messages.STAFF_ONLY, messages.STAFF_ONLY_TEXT)
    if amr_and_acr(active.methods)[1] != "mfa":
        # /login/verify asks for the second factor only, or sends someone without one to enrollment first.
        return _redirect("/login/verify", next=here)
    if recent and not idp.mfa.is_recent(active):
        return to_login(here, reauth=True)
    return Staff(active=active, roles=roles, client_ip=client_ip(request))


async def posted(
    request: Request, limits: dict[str, int], back: str, *, admin: bool = False, recent: bool = False
) -> tuple[Staff, dict[str, str]] | Response:
    """A console form POST: the staff member (as `enter`, coming back to the page `back`) and the checked form.

    The CSRF token is checked before anything else is looked at: a forged POST is 403 and changes nothing."""
    form = await page_form(request, {**limits, "csrf_token": 128})
    if isinstance(form, Response):
        return form
    staff = await enter(request, back, admin=admin, recent=recent)
    if isinstance(staff, Response):
        return staff
    return staff, form
