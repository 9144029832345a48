"""Admin operations on signing keys."""

from __future__ import annotations

from idp.admin.api import Call, operation
from idp.admin.schemas import KeyList, KeyOut


def key_list(call: Call) -> KeyList:
    return KeyList(items=[KeyOut.model_validate(k) for k in call.idp.key_ring.describe()], next_cursor=None)


@operation("GET", "/keys", summary="List live signing keys", response=KeyList)
async def list_keys(call: Call) -> KeyList:
    return key_list(call)


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
