"""The console's support pages (INTERFACE §5): find a person, see their account, and the recovery actions.

Every action goes through the same services as the admin API and is audited with the staff member as actor."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from idp.console.access import Staff, enter, posted
from idp.errors import Conflict, InvalidInput, NotFound
from idp.services.importer import MAX_EXTERNAL_ID_LENGTH
from idp.services.users import MAX_EMAIL_LENGTH
from idp.store.models import User
from idp.templating import render
from idp.web import messages
from idp.web.errors import error_page
from idp.web.params import read_query_leniently
from idp.web.request import services

SEARCH_QUERY = {"email": MAX_EMAIL_LENGTH, "external_id": MAX_EXTERNAL_ID_LENGTH}
SEARCH_LIMIT = 50
RECENT_EVENTS = 50
MAX_REASON = 500
REASON_FIELDS = {"reason": MAX_REASON}
# After an action the person's page says what was done.
DONE = {
    "reset": "reset",
    "unlocked": "unlocked",
    "link": "link",
    "sessions": "sessions",
    "disabled": "disabled",
    "enabled": "enabled",
}


def person_path(user_id: str) -> str:
    return f"/admin/users/{user_id}"


def describe_details(details: str) -> str:
    """An audit event's details as `name: value` pairs for people to read (they never hold a secret)."""
    try:
        values: Any = json.loads(details)
    except ValueError:
        return ""
    if not isinstance(values, dict):
        return ""
    return ", ".join(f"{k}: {v}" for k, v in values.items())


async def home(request: Request) -> Response:
    """Search by email (prefix) or a job board's external id."""
    staff = await enter(request, "/admin")
    if isinstance(staff, Response):
        return staff
    idp = services(request)
    query = read_query_leniently(request, SEARCH_QUERY)
    email, external_id = query.get("email", "").strip(), query.get("external_id", "").strip()
    results: list[User] | None = None
    if external_id:
        results = await idp.importer.find_by_external_id(external_id, after=None, limit=SEARCH_LIMIT)
    elif email:
        results = await idp.users.search(email, limit=SEARCH_LIMIT)
    roles = await idp.users.roles_of_users([u.id for u in results]) if results else {}
    return render(
        request,
        "admin/home.html",
        {"staff": staff, "email": email, "external_id": external_id, "results": results, "roles": roles},
    )


async def _load(request: Request, user_id: str) -> User | Response:
    try:
        if "\x00" in user_id:
            raise NotFound("no id of ours holds a NUL")  # and PostgreSQL refuses one in a string
        return await services(request).users.load(user_id)
    except NotFound:
        return error_page(request, 404, messages.NO_SUCH_PERSON, messages.NO_SUCH_PERSON_TEXT)


async def person(request: Request) -> Response:
    user_id = str(request.path_params["user_id"])
    staff = await enter(request, person_path(user_id))
    if isinstance(staff, Response):
        return staff
    user = await _load(request, user_id)
    if isinstance(user, Response):
        return user
    return await _person_page(request, staff, user)


async def _person_page(
    request: Request, staff: Staff, user: User, *, error: str | None = None, status: int = 200
) -> Response:
    idp = services(request)
    done = DONE.get(read_query_leniently(request, {"done": 20}).get("done", ""))
    sessions = await idp.sessions.list_of_user(user.id)
    sessions.sort(key=lambda v: -v.last_seen_at.timestamp())
    events = await idp.audit.list(user_id=user.id, limit=RECENT_EVENTS)
    return render(
        request,
        "admin/person.html",
        {
            "staff": staff,
            "user": user,
            "mfa": await idp.mfa.status(user.id),
            "sessions": sessions,
            "events": [(e, describe_details(e.details)) for e in events],
            "roles": await idp.users.roles(user.id),
            "passkeys": await idp.passkeys.list_passkeys(user.id),
            "done": done,
            "error": error,
            "email_enabled": idp.settings.email_enabled,
        },
        status_code=status,
    )


# -- reset two-step verification: consequences first, then a reason -----------------------------------------


async def reset_page(request: Request) -> Response:
    user_id = str(request.path_params["user_id"])
    here = person_path(user_id) + "/reset-mfa"
    staff = await enter(request, here, recent=True)
    if isinstance(staff, Response):
        return staff
    user = await _load(request, user_id)
    if isinstance(user, Response):
        return user
    return await _reset_form(request, staff, user)


async def _reset_form(
    request: Request, staff: Staff, user: User, *, reason: str = "", error: str | None = None, status: int = 200
) -> Response:
    idp = services(request)
    return render(
        request,
        "admin/reset_mfa.html",
        {
            "staff": staff,
            "user": user,
            "mfa": await idp.mfa.status(user.id),
            "sessions": len(await idp.sessions.list_of_user(user.id)),
            "reason": reason,
            "error": error,
        },
        status_code=status,
    )


async def reset_submit(request: Request) -> Response:
    user_id = str(request.path_params["user_id"])
    here = person_path(user_id) + "/reset-mfa"
    result = await posted(request, REASON_FIELDS, here, recent=True)
    if isinstance(result, Response):
        return result
    staff, form = result
    user = await _load(request, user_id)
    if isinstance(user, Response):
        return user
    reason = form["reason"].strip()
    if len(reason) < 3:
        return await _reset_form(request, staff, user, reason=reason, error="reason", status=400)
    try:
        await services(request).users.reset_mfa(user.id, reason=reason, actor=staff.actor, client_ip=staff.client_ip)
    except InvalidInput:
        return await _reset_form(request, staff, user, reason=reason, error="reason", status=400)
    return RedirectResponse(person_path(user.id) + "?done=reset", status_code=303)


# -- the other actions: one POST each, back to the person's page ---------------------------------------------


async def _act(request: Request, *, recent: bool) -> tuple[Staff, User] | Response:
    user_id = str(request.path_params["user_id"])
    result = await posted(request, {}, person_path(user_id), recent=recent)
    if isinstance(result, Response):
        return result
    user = await _load(request, user_id)
    if isinstance(user, Response):
        return user
    return result[0], user


def _done(user: User, what: str) -> Response:
    return RedirectResponse(person_path(user.id) + "?done=" + what, status_code=303)


async def unlock_submit(request: Request) -> Response:
    acted = await _act(request, recent=False)
    if isinstance(acted, Response):
        return acted
    staff, user = acted
    await services(request).login.unlock(user.id, actor=staff.actor, client_ip=staff.client_ip)
    return _done(user, "unlocked")


async def reset_link_submit(request: Request) -> Response:
    """Email the person a password-reset link (the link itself is never shown here)."""
    acted = await _act(request, recent=False)
    if isinstance(acted, Response):
        return acted
    staff, user = acted
    try:
        await services(request).accounts.reset_link_for_support(
            user.id, actor=staff.actor, client_ip=staff.client_ip, send=True
        )
    except Conflict:
        return await _person_page(request, staff, user, error="email_off", status=409)
    return _done(user, "link")


async def sessions_submit(request: Request) -> Response:
    acted = await _act(request, recent=True)
    if isinstance(acted, Response):
        return acted
    staff, user = acted
    await services(request).users.revoke_sessions(user.id, actor=staff.actor, client_ip=staff.client_ip)
    return _done(user, "sessions")


async def disable_submit(request: Request) -> Response:
    acted = await _act(request, recent=True)
    if isinstance(acted, Response):
        return acted
    staff, user = acted
    await services(request).users.update(
        user.id, name=None, disabled=True, actor=staff.actor, client_ip=staff.client_ip
    )
    return _done(user, "disabled")


async def enable_submit(request: Request) -> Response:
    acted = await _act(request, recent=False)
    if isinstance(acted, Response):
        return acted
    staff, user = acted
    await services(request).users.update(
        user.id, name=None, disabled=False, actor=staff.actor, client_ip=staff.client_ip
    )
    return _done(user, "enabled")
