"""The console's admin pages (INTERFACE §5, `admin` role only): job boards (clients), signing keys, admin tokens
and the audit log. The same services as the admin API; a new secret or token is shown once, on the response to
the POST that made it, and never again."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from idp.console.access import Staff, enter, posted
from idp.console.people import describe_details
from idp.errors import Conflict, InvalidInput, NotFound
from idp.services.admin_tokens import describe as describe_token
from idp.services.clients import ClientInfo
from idp.templating import render
from idp.web import messages
from idp.web.errors import error_page
from idp.web.params import read_query_leniently
from idp.web.request import services

PAGE = 50
NO_STORE = {"Cache-Control": "no-store"}
CLIENT_FIELDS = {
    "name": 200,
    "client_name": 200,
    "logo_uri": 2000,
    "client_uri": 2000,
    "redirect_uris": 20_000,
    "backchannel_logout_uri": 2000,
    "allow_signup": 1,
    "require_mfa": 1,
    "public": 1,
}
TOKEN_FIELDS = {"name": 100}
AUDIT_QUERY = {"user_id": 36, "type": 60, "since": 32, "before": 18}


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


# -- job boards ---------------------------------------------------------------------------------------------


async def clients_page(request: Request) -> Response:
    staff = await enter(request, "/admin/clients", admin=True)
    if isinstance(staff, Response):
        return staff
    after = read_query_leniently(request, {"after": 64}).get("after") or None
    clients = await services(request).clients.list(after=after, limit=PAGE + 1)
    page = clients[:PAGE]
    following = page[-1].client_id if len(clients) > PAGE else None
    return render(request, "admin/clients.html", {"staff": staff, "clients": page, "following": following})


def _client_form(
    request: Request,
    staff: Staff,
    *,
    client: ClientInfo | None,
    values: dict[str, Any],
    error: str | None = None,
    status: int = 200,
    done: str | None = None,
) -> Response:
    return render(
        request,
        "admin/client.html",
        {"staff": staff, "client": client, "values": values, "error": error, "done": done},
        status_code=status,
    )


def _values_of(client: ClientInfo) -> dict[str, Any]:
    return {
        "name": client.name,
        "client_name": client.client_name,
        "logo_uri": client.logo_uri,
        "client_uri": client.client_uri,
        "redirect_uris": "\n".join(client.redirect_uris),
        "backchannel_logout_uri": client.backchannel_logout_uri or "",
        "allow_signup": client.allow_signup,
        "require_mfa": client.require_mfa,
        "public": client.public,
    }


def _values_from(form: dict[str, str]) -> dict[str, Any]:
    return {
        "name": form["name"].strip(),
        "client_name": form["client_name"].strip(),
        "logo_uri": form["logo_uri"].strip(),
        "client_uri": form["client_uri"].strip(),
        "redirect_uris": form["redirect_uris"],
        "backchannel_logout_uri": form["backchannel_logout_uri"].strip(),
        "allow_signup": form["allow_signup"] == "1",
        "require_mfa": form["require_mfa"] == "1",
        "public": form["public"] == "1",
    }


async def new_client_page(request: Request) -> Response:
    staff = await enter(request, "/admin/clients/new", admin=True)
    if isinstance(staff, Response):
        return staff
    values = {k: "" for k in CLIENT_FIELDS}
    return _client_form(request, staff, client=None, values=values)


async def new_client_submit(request: Request) -> Response:
    result = await posted(request, CLIENT_FIELDS, "/admin/clients/new", admin=True)
    if isinstance(result, Response):
        return result
    staff, form = result
    values = _values_from(form)
    try:
        client, secret = await services(request).clients.create(
            values["name"],
            redirect_uris=_lines(values["redirect_uris"]),
            public=values["public"],
            require_mfa=values["require_mfa"],
            backchannel_logout_uri=values["backchannel_logout_uri"],
            allow_signup=values["allow_signup"],
            client_name=values["client_name"],
            logo_uri=values["logo_uri"],
            client_uri=values["client_uri"],
            actor=staff.actor,
            client_ip=staff.client_ip,
        )
    except (InvalidInput, Conflict) as exc:
        return _client_form(request, staff, client=None, values=values, error=str(exc), status=400)
    return render(
        request,
        "admin/client_secret.html",
        {"staff": staff, "client": client, "secret": secret, "created": True},
        headers=NO_STORE,
    )


async def _load_client(request: Request, client_id: str) -> ClientInfo | Response:
    try:
        if "\x00" in client_id:
            raise NotFound("no id of ours holds a NUL")
        return await services(request).clients.load(client_id)
    except NotFound:
        return error_page(request, 404, messages.NO_SUCH_CLIENT, messages.NO_SUCH_CLIENT_TEXT)


async def client_page(request: Request) -> Response:
    client_id = str(request.path_params["client_id"])
    staff = await enter(request, f"/admin/clients/{client_id}", admin=True)
    if isinstance(staff, Response):
        return staff
    client = await _load_client(request, client_id)
    if isinstance(client, Response):
        return client
    done = {"saved": "saved"}.get(read_query_leniently(request, {"done": 20}).get("done", ""))
    return _client_form(request, staff, client=client, values=_values_of(client), done=done)


async def client_submit(request: Request) -> Response:
    """Change a job board's name, display metadata, redirect URIs, back-channel URI, sign-up and two-step rule."""
    client_id = str(request.path_params["client_id"])
    result = await posted(request, CLIENT_FIELDS, f"/admin/clients/{client_id}", admin=True, recent=True)
    if isinstance(result, Response):
        return result
    staff, form = result
    client = await _load_client(request, client_id)
    if isinstance(client, Response):
        return client
    values = _values_from(form)
    values["public"] = client.public  # fixed at registration
    changes = {
        "name": values["name"],
        "client_name": values["client_name"],
        "logo_uri": values["logo_uri"],
        "client_uri": values["client_uri"],
        "redirect_uris": _lines(values["redirect_uris"]),
        "backchannel_logout_uri": values["backchannel_logout_uri"],
        "allow_signup": values["allow_signup"],
        "require_mfa": values["require_mfa"],
    }
    try:
        await services(request).clients.update(client_id, changes, actor=staff.actor, client_ip=staff.client_ip)
    except (InvalidInput, Conflict) as exc:
        return _client_form(request, staff, client=client, values=values, error=str(exc), status=400)
    except NotFound:
        return error_page(request, 404, messages.NO_SUCH_CLIENT, messages.NO_SUCH_CLIENT_TEXT)
    return RedirectResponse(f"/admin/clients/{client_id}?done=saved", status_code=303)


async def secret_submit(request: Request) -> Response:
    """A new secret for a confidential job board, shown on this response only; the old one stops working."""
    client_id = str(request.path_params["client_id"])
    result = await posted(request, {}, f"/admin/clients/{client_id}", admin=True, recent=True)
    if isinstance(result, Response):
        return result
    staff, _ = result
    client = await _load_client(request, client_id)
    if isinstance(client, Response):
        return client
    try:
        secret = await services(request).clients.rotate_secret(client_id, actor=staff.actor, client_ip=staff.client_ip)
    except (InvalidInput, Conflict) as exc:
        return _client_form(request, staff, client=client, values=_values_of(client), error=str(exc), status=400)
    except NotFound:
        return error_page(request, 404, messages.NO_SUCH_CLIENT, messages.NO_SUCH_CLIENT_TEXT)
    return render(
        request,
        "admin/client_secret.html",
        {"staff": staff, "client": client, "secret": secret, "created": False},
        headers=NO_STORE,
    )


# -- signing keys -------------------------------------------------------------------------------------------


def _keys_page(request: Request, staff: Staff, *, error: str | None = None, done: str | None = None) -> Response:
    keys = services(request).key_ring.describe()
    return render(
        request,
        "admin/keys.html",
        {"staff": staff, "keys": keys, "error": error, "done": done},
        status_code=409 if error else 200,
    )


async def keys_page(request: Request) -> Response:
    staff = await enter(request, "/admin/keys", admin=True)
    if isinstance(staff, Response):
        return staff
    done = {"rotated": "rotated", "retired": "retired"}.get(read_query_leniently(request, {"done": 20}).get("done", ""))
    return _keys_page(request, staff, done=done)


async def keys_rotate_submit(request: Request) -> Response:
    result = await posted(request, {}, "/admin/keys", admin=True, recent=True)
    if isinstance(result, Response):
        return result
    staff, _ = result
    idp = services(request)
    kids = await idp.key_ring.rotate()
    async with idp.db.transaction() as session:
        await idp.audit.record(session, "admin.keys_rotated", actor=staff.actor, client_ip=staff.client_ip, kids=kids)
    return RedirectResponse("/admin/keys?done=rotated", status_code=303)


async def key_retire_submit(request: Request) -> Response:
    kid = str(request.path_params["kid"])
    result = await posted(request, {}, "/admin/keys", admin=True, recent=True)
    if isinstance(result, Response):
        return result
    staff, _ = result
    idp = services(request)
    try:
        if "\x00" in kid:
            raise NotFound("no id of ours holds a NUL")
        await idp.key_ring.retire(kid)
    except NotFound:
        return _keys_page(request, staff, error="unknown")
    except Conflict:
        return _keys_page(request, staff, error="signing")
    async with idp.db.transaction() as session:
        await idp.audit.record(session, "admin.key_retired", actor=staff.actor, client_ip=staff.client_ip, kid=kid)
    return RedirectResponse("/admin/keys?done=retired", status_code=303)


# -- admin tokens -------------------------------------------------------------------------------------------


async def _tokens_page(
    request: Request,
    staff: Staff,
    *,
    token: str | None = None,
    name: str = "",
    error: str | None = None,
    done: str | None = None,
    status: int = 200,
) -> Response:
    tokens = [describe_token(t) for t in await services(request).admin_tokens.list()]
    tokens.reverse()  # newest first
    return render(
        request,
        "admin/tokens.html",
        {"staff": staff, "tokens": tokens, "token": token, "name": name, "error": error, "done": done},
        status_code=status,
        headers=NO_STORE if token else None,
    )


async def tokens_page(request: Request) -> Response:
    staff = await enter(request, "/admin/tokens", admin=True)
    if isinstance(staff, Response):
        return staff
    done = {"revoked": "revoked"}.get(read_query_leniently(request, {"done": 20}).get("done", ""))
    return await _tokens_page(request, staff, done=done)


async def token_create_submit(request: Request) -> Response:
    result = await posted(request, TOKEN_FIELDS, "/admin/tokens", admin=True, recent=True)
    if isinstance(result, Response):
        return result
    staff, form = result
    try:
        row, token = await services(request).admin_tokens.create(
            form["name"], actor=staff.actor, client_ip=staff.client_ip
        )
    except InvalidInput:
        return await _tokens_page(request, staff, name=form["name"], error="name", status=400)
    return await _tokens_page(request, staff, token=token, name=row.name)


async def token_revoke_submit(request: Request) -> Response:
    token_id = str(request.path_params["token_id"])
    result = await posted(request, {}, "/admin/tokens", admin=True, recent=True)
    if isinstance(result, Response):
        return result
    staff, _ = result
    try:
        if "\x00" in token_id:
            raise NotFound("no id of ours holds a NUL")
        await services(request).admin_tokens.revoke(token_id, actor=staff.actor, client_ip=staff.client_ip)
    except NotFound:
        return await _tokens_page(request, staff, error="unknown", status=404)
    return RedirectResponse("/admin/tokens?done=revoked", status_code=303)


# -- the audit log ------------------------------------------------------------------------------------------


def _since(text: str) -> datetime | None:
    """A date (YYYY-MM-DD) or ISO time; naive means UTC. None for anything else."""
    try:
        value = datetime.fromisoformat(text)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


async def audit_page(request: Request) -> Response:
    staff = await enter(request, "/admin/audit", admin=True)
    if isinstance(staff, Response):
        return staff
    query = read_query_leniently(request, AUDIT_QUERY)
    user_id = query.get("user_id", "").strip()
    type_ = query.get("type", "").strip()
    since_text = query.get("since", "").strip()
    since = _since(since_text) if since_text else None
    before = query.get("before", "")
    events = await services(request).audit.list(
        user_id=user_id or None,
        type_=type_ or None,
        since=since,
        before_id=int(before) if before.isdigit() else None,
        limit=PAGE + 1,
    )
    page = events[:PAGE]
    following = str(page[-1].id) if len(events) > PAGE else None
    return render(
        request,
        "admin/audit.html",
        {
            "staff": staff,
            "events": [(e, describe_details(e.details)) for e in page],
            "filters": {"user_id": user_id, "type": type_, "since": since_text},
            "bad_since": bool(since_text) and since is None,
            "following": following,
        },
    )
