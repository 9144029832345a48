"""Admin operations on signing keys."""

from __future__ import annotations

from idp.admin.api import ApiError, Call, decode_cursor, encode_cursor, operation
from idp.admin.schemas import KeyList, KeyOut, ListQuery


def key_list(call: Call, *, after: str | None = None, limit: int | None = None) -> KeyList:
    """Live keys, newest first (kid breaking ties); `after` is the cursor ending the previous page."""
    keys = sorted(
        (KeyOut.model_validate(k) for k in call.idp.key_ring.describe()),
        key=lambda k: (-k.created_at.timestamp(), k.kid),
    )
    if after is not None:
        # The cursor is the last key's position, not its index: a key retired between pages skips nothing.
        stamp, _, kid = after.partition(" ")
        try:
            position = (-float(stamp), kid)
        except ValueError:
            raise ApiError(400, "invalid_request", "cursor is not one this API gave out") from None
        keys = [k for k in keys if (-k.created_at.timestamp(), k.kid) > position]
    if limit is None or len(keys) <= limit:
        return KeyList(items=keys, next_cursor=None)
    page = keys[:limit]
    last = page[-1]
    return KeyList(items=page, next_cursor=encode_cursor(f"{last.created_at.timestamp()!r} {last.kid}"))


@operation("GET", "/keys", summary="List live signing keys", query=ListQuery, response=KeyList)
async def list_keys(call: Call) -> KeyList:
    query: ListQuery = call.query
    return key_list(call, after=decode_cursor(query.cursor), limit=query.limit)


@operation("POST", "/keys/rotate", summary="A new key per algorithm signs from now on", response=KeyList)
async def rotate_keys(call: Call) -> KeyList:
    kids = await call.idp.key_ring.rotate()
    async with call.idp.db.transaction() as session:
        await call.idp.audit.record(
            session, "admin.keys_rotated", actor=call.admin.actor, client_ip=call.client_ip, kids=kids
        )
    return key_list(call)


@operation("POST", "/keys/{kid}/retire", summary="Remove a key from the JWKS", response=KeyList, errors=(404, 409))
async def retire_key(call: Call) -> KeyList:
    await call.idp.key_ring.retire(call.path["kid"])
    async with call.idp.db.transaction() as session:
        await call.idp.audit.record(
            session, "admin.key_retired", actor=call.admin.actor, client_ip=call.client_ip, kid=call.path["kid"]
        )
    return key_list(call)
