"""Admin operations on people, including assisted recovery of a lost second factor (INTERFACE §5)."""

from __future__ import annotations

from idp.admin.api import Call, decode_cursor, encode_cursor, operation
from idp.admin.schemas import (
    ListQuery,
    MfaOut,
    MfaReset,
    PasskeyOut,
    SessionClientOut,
    SessionOut,
    SessionPage,
    UserCreate,
    UserOut,
    UserPage,
    UserPatch,
    UserQuery,
)
from idp.services.login import amr_and_acr
from idp.services.users import normalize_email
from idp.store.models import User


async def user_out(call: Call, user: User) -> UserOut:
    status = await call.idp.mfa.status(user.id)
    keys = await call.idp.passkeys.list_passkeys(user.id) if status.passkeys else []
    return UserOut(
        id=user.id,
        email=user.email,
        name=user.name,
        disabled=user.disabled,
        created_at=user.created_at,
        updated_at=user.updated_at,
        mfa=MfaOut(enabled=status.enabled, since=status.since, backup_codes_left=status.backup_codes_left),
        roles=await call.idp.users.roles(user.id),
        passkeys=[
            PasskeyOut(
                id=k.id,
                name=k.name,
                created_at=k.created_at,
                last_used_at=k.last_used_at,
                synced=k.synced,
                backed_up=k.backed_up,
            )
            for k in keys
        ],
    )


@operation(
    "GET",
    "/users",
    summary="List or search users by email or by a job board's external id",
    query=UserQuery,
    response=UserPage,
)
async def list_users(call: Call) -> UserPage:
    query: UserQuery = call.query
    after = decode_cursor(query.cursor)
    if query.external_id is not None:
        users = await call.idp.importer.find_by_external_id(query.external_id, after=after, limit=query.limit + 1)
        if query.email is not None:
            users = [u for u in users if u.email_norm == normalize_email(query.email)]
    else:
        users = await call.idp.users.list(email=query.email, after=after, limit=query.limit + 1)
    page = users[: query.limit]
    return UserPage(
        items=[await user_out(call, u) for u in page],
        next_cursor=encode_cursor(page[-1].id) if len(users) > query.limit else None,
    )


@operation("POST", "/users", summary="Create a user", status=201, body=UserCreate, response=UserOut, errors=(409,))
async def create_user(call: Call) -> UserOut:
    body: UserCreate = call.body
    user = await call.idp.users.create(
        body.email, name=body.name, password=body.password, actor=call.admin.actor, client_ip=call.client_ip
    )
    return await user_out(call, user)


@operation("GET", "/users/{user_id}", summary="Get a user with two-step status", response=UserOut, errors=(404,))
async def get_user(call: Call) -> UserOut:
    return await user_out(call, await call.idp.users.load(call.path["user_id"]))


@operation(
    "PATCH",
    "/users/{user_id}",
    summary="Change name, disabled or staff roles",
    body=UserPatch,
    response=UserOut,
    errors=(404,),
)
async def update_user(call: Call) -> UserOut:
    body: UserPatch = call.body
    user_id = call.path["user_id"]
    if body.roles is not None:
        await call.idp.users.set_roles(user_id, list(body.roles), actor=call.admin.actor, client_ip=call.client_ip)
    if body.roles is None or body.name is not None or body.disabled is not None:
        user = await call.idp.users.update(
            user_id, name=body.name, disabled=body.disabled, actor=call.admin.actor, client_ip=call.client_ip
        )
    else:
        user = await call.idp.users.load(user_id)
    return await user_out(call, user)


@operation(
    "DELETE",
    "/users/{user_id}",
    summary="Delete a user: sessions end (logout tokens go out), tokens stop working, the person's data goes; "
    "their audit events keep only the user id",
    status=204,
    errors=(404,),
)
async def delete_user(call: Call) -> None:
    await call.idp.users.delete(call.path["user_id"], actor=call.admin.actor, client_ip=call.client_ip)


@operation(
    "POST",
    "/users/{user_id}/mfa/reset",
    summary="Remove the authenticator and backup codes after proof of identity; ends sessions and tokens",
    body=MfaReset,
    response=UserOut,
    errors=(404,),
)
async def reset_mfa(call: Call) -> UserOut:
    body: MfaReset = call.body
    user = await call.idp.users.reset_mfa(
        call.path["user_id"], reason=body.reason, actor=call.admin.actor, client_ip=call.client_ip
    )
    return await user_out(call, user)


@operation("POST", "/users/{user_id}/sessions/revoke", summary="End every session and token", status=204, errors=(404,))
async def revoke_sessions(call: Call) -> None:
    await call.idp.users.revoke_sessions(call.path["user_id"], actor=call.admin.actor, client_ip=call.client_ip)


@operation(
    "GET",
    "/users/{user_id}/sessions",
    summary="The person's signed-in sessions, with the clients each signed into",
    query=ListQuery,
    response=SessionPage,
    errors=(404,),
)
async def list_sessions(call: Call) -> SessionPage:
    query: ListQuery = call.query
    user = await call.idp.users.load(call.path["user_id"])
    views = await call.idp.sessions.list_of_user(user.id, after=decode_cursor(query.cursor), limit=query.limit + 1)
    page = views[: query.limit]
    return SessionPage(
        items=[
            SessionOut(
                id=v.sid,
                created_at=v.created_at,
                last_seen_at=v.last_seen_at,
                ip=v.client_ip,
                user_agent=v.user_agent,
                amr=amr_and_acr(v.methods)[0],
                clients=[SessionClientOut(client_id=c, client_name=n) for c, n in v.clients],
            )
            for v in page
        ],
        next_cursor=encode_cursor(page[-1].sid) if len(views) > query.limit else None,
    )


@operation(
    "POST",
    "/users/{user_id}/unlock",
    summary="Clear the sign-in attempt limits on the account (device-bound ones included)",
    status=204,
    errors=(404,),
)
async def unlock_user(call: Call) -> None:
    await call.idp.login.unlock(call.path["user_id"], actor=call.admin.actor, client_ip=call.client_ip)


@operation(
    "POST",
    "/users/{user_id}/password-reset",
    summary="Email the person a single-use password-reset link (30 minutes; a code is still asked when two-step "
    "verification is on). 409 when email is off",
    status=202,
    errors=(404, 409),
)
async def send_password_reset(call: Call) -> None:
    await call.idp.accounts.reset_link_for_support(
        call.path["user_id"], actor=call.admin.actor, client_ip=call.client_ip, send=True
    )
