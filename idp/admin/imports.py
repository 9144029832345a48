"""`POST /admin/api/users/import`: onboarding a job board's accounts from a JSON Lines body (INTERFACE §5, §7).

Registered before idp.admin.users, so that its literal path wins over `/users/{user_id}`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from idp.admin.api import ApiError, Call, operation
from idp.admin.schemas import ImportOut, ImportQuery, ImportResultOut, ImportSummaryOut

JSON_LINES = ("application/jsonl", "application/x-ndjson", "application/x-jsonlines")
MAX_BODY_BYTES = 64 * 1024 * 1024
PIECE = 65536
# The app's body limit lets this one path carry an import file (idp.web.edge).
IMPORT_BODY_LIMIT = {"/admin/api/users/import": MAX_BODY_BYTES}


@operation(
    "POST",
    "/users/import",
    summary="Import accounts from JSON Lines (one account a line); one result per line and a summary",
    query=ImportQuery,
    response=ImportOut,
    raw_body=JSON_LINES,
)
async def import_users(call: Call) -> ImportOut:
    query: ImportQuery = call.query
    media = call.request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in JSON_LINES:
        raise ApiError(415, "invalid_request", f"the body must be JSON Lines ({JSON_LINES[0]})")
    body = await _read_body(call)
    results: list[ImportResultOut] = []
    summary: ImportSummaryOut | None = None
    async for item in call.idp.importer.run(
        _pieces(body), dry_run=query.dry_run, actor=call.admin.actor, client_ip=call.client_ip
    ):
        if "summary" in item:
            summary = ImportSummaryOut.model_validate(item["summary"])
        else:
            results.append(ImportResultOut.model_validate(item))
    assert summary is not None
    return ImportOut(results=results, summary=summary)


async def _read_body(call: Call) -> bytes:
    """The whole body, refused (413) past MAX_BODY_BYTES before any line is written."""
    declared = call.request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ApiError(413, "invalid_request", f"the body must be at most {MAX_BODY_BYTES} bytes")
    parts: list[bytes] = []
    size = 0
    async for chunk in call.request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(413, "invalid_request", f"the body must be at most {MAX_BODY_BYTES} bytes")
        parts.append(chunk)
    body = b"".join(parts)
    if not body.strip():
        raise ApiError(400, "invalid_request", "the body holds no lines")
    return body


async def _pieces(body: bytes) -> AsyncIterator[bytes]:
    view = memoryview(body)
    for start in range(0, len(view), PIECE):
        yield bytes(view[start : start + PIECE])
