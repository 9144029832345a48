"""The admin API's machinery: one registry of operations from which both the routes and the OpenAPI 3.1
document are made, bearer authentication, strict JSON parsing, and one error shape."""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from idp import __version__
from idp.admin.schemas import ErrorOut
from idp.errors import Conflict, DomainError, InvalidInput, NotFound, RateLimited, UnreadableInput
from idp.services.admin_tokens import AdminIdentity
from idp.web.params import read_json, read_query, read_query_params
from idp.web.request import client_ip, services

if TYPE_CHECKING:
    from idp.container import Idp

log = logging.getLogger(__name__)
PREFIX = "/admin/api"
NO_STORE = {"Cache-Control": "no-store"}


class ApiError(Exception):
    def __init__(self, status: int, error: str, description: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description
        self.headers = headers or {}


@dataclass
class Call:
    """What a handler receives: who calls, from where, and the parsed inputs."""

    request: Request
    admin: AdminIdentity
    path: dict[str, str]
    query: Any
    body: Any

    @property
    def idp(self) -> Idp:
        return services(self.request)

    @property
    def client_ip(self) -> str:
        return client_ip(self.request)


Handler = Callable[[Call], Awaitable[BaseModel | None]]


@dataclass
class Operation:
    method: str
    path: str
    handler: Handler
    summary: str
    status: int
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    errors: tuple[int, ...]
    # A body the handler reads itself (JSON Lines, say): the content types it takes, for the OpenAPI document.
    raw_body: tuple[str, ...] = ()


OPERATIONS: list[Operation] = []


def operation(
    method: str,
    path: str,
    *,
    summary: str,
    status: int = 200,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    errors: tuple[int, ...] = (),
    raw_body: tuple[str, ...] = (),
) -> Callable[[Handler], Handler]:
    """Register an admin operation at PREFIX + `path` (path parameters as `{name}`)."""

    def register(handler: Handler) -> Handler:
        OPERATIONS.append(Operation(method, path, handler, summary, status, body, query, response, errors, raw_body))
        return handler

    return register


# -- cursors ----------------------------------------------------------------------------------------------


def encode_cursor(value: str | int) -> str:
    return base64.urlsafe_b64encode(str(value).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        value = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        value = ""
    # Every cursor we give out is a printable id; anything else (a NUL, say, which PostgreSQL refuses) is forged.
    if not value or not value.isprintable():
        raise ApiError(400, "invalid_request", "cursor is not one this API gave out")
    return value


# -- the request pipeline ---------------------------------------------------------------------------------


async def _authenticate(request: Request) -> AdminIdentity:
    """The caller's admin identity, or ApiError 401 (audited) or 429 past the address's failure limit.

    A wrong token is counted (reserved) and committed before the limit is checked, as at sign-in, so a burst of
    concurrent guesses on any number of replicas cannot all pass the check before the first failure is recorded.
    """
    idp = services(request)
    ip = client_ip(request)
    limits = idp.limiter.admin_limits(ip)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    bearer = token.strip() if scheme.lower() == "bearer" else ""
    admin = await idp.admin_tokens.authenticate(bearer) if bearer else None
    reserved: list[int] = []
    reason, credential = "", ""
    if admin is None:
        reason, credential = await _refusal(idp, header, scheme, bearer)
        async with idp.db.transaction() as session:
            reserved = await idp.limiter.record_failure(session, limits)
    try:
        if admin is None:
            await idp.limiter.admit(idp.db, limits, reserved)
        else:
            # A valid token is refused too while the address is locked out, so the answer tells nothing.
            async with idp.db.transaction() as session:
                await idp.limiter.check(session, limits)
    except RateLimited as exc:
        idp.metrics.lockout(exc.scope)
        # The refused attempt was not tried: it does not count, so the window still passes by itself.
        async with idp.db.transaction() as session:
            await idp.limiter.release(session, reserved)
            await idp.audit.record(session, "admin.locked", client_ip=ip, outcome="refused", scope=exc.scope)
        raise ApiError(429, "rate_limited", "too many failed attempts", {"Retry-After": str(exc.retry_after)}) from None
    if admin is None:
        async with idp.db.transaction() as session:
            await idp.limiter.settle(session, reserved)
            await idp.audit.record(
                session, "admin.auth_failed", client_ip=ip, outcome="failure", reason=reason, credential=credential
            )
        raise ApiError(401, "unauthorized", "a valid admin bearer token is required", {"WWW-Authenticate": "Bearer"})
    return admin


async def _refusal(idp: Idp, header: str, scheme: str, bearer: str) -> tuple[str, str]:
    """Why a presentation failed (never the token): no header, another scheme, or what the token service says."""
    if not header:
        return "missing", ""
    if scheme.lower() != "bearer":
        return "not_bearer", ""
    return await idp.admin_tokens.refusal(bearer)


def _validation_message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    return f"{where}: {first['msg']}"


# How the one parameter reader's refusals answer here: a body or query we cannot read is 400, one we can
# read but whose content we refuse is 422 (INTERFACE §5: a malformed body is 400 or 422, never 500).
_UNREADABLE_STATUS = {"content_type": 415, "characters": 422, "too_long": 422, "shape": 422}


def _unreadable(exc: UnreadableInput) -> ApiError:
    return ApiError(_UNREADABLE_STATUS.get(exc.kind, 400), "invalid_request", str(exc))


async def _parse_body(request: Request, model: type[BaseModel]) -> BaseModel:
    try:
        data = await read_json(request)
    except UnreadableInput as exc:
        raise _unreadable(exc) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", _validation_message(exc)) from None


def _parse_query(request: Request, model: type[BaseModel]) -> BaseModel:
    try:
        values = read_query(request, None)
    except UnreadableInput as exc:
        raise _unreadable(exc) from None
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", _validation_message(exc)) from None


def _any_query(request: Request) -> bool:
    """Whether the query string holds any parameter, readable or not: an operation without a query takes none."""
    try:
        params = read_query_params(request, None)
    except UnreadableInput:
        return True
    return bool(params.values or params.repeated or params.invalid)


def _error(status: int, error: str, description: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description}, status_code=status, headers={**NO_STORE, **(headers or {})}
    )


def _endpoint(op: Operation) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            admin = await _authenticate(request)
            path = {k: str(v) for k, v in request.path_params.items()}
            if any("\x00" in v for v in path.values()):
                raise ApiError(404, "not_found", "no such resource")  # no id of ours holds a NUL
            call = Call(
                request=request,
                admin=admin,
                path=path,
                query=_parse_query(request, op.query) if op.query else None,
                body=await _parse_body(request, op.body) if op.body else None,
            )
            if op.query is None and _any_query(request):
                raise ApiError(400, "invalid_request", "this operation takes no query parameters")
            result = await op.handler(call)
        except ApiError as exc:
            return _error(exc.status, exc.error, exc.description, exc.headers)
        except NotFound as exc:
            return _error(404, "not_found", str(exc))
        except Conflict as exc:
            return _error(409, "conflict", str(exc))
        except InvalidInput as exc:
            return _error(422, "invalid_request", str(exc))
        except DomainError as exc:
            return _error(400, "invalid_request", str(exc))
        if result is None:
            return Response(status_code=op.status, headers=NO_STORE)
        return Response(
            result.model_dump_json(), status_code=op.status, media_type="application/json", headers=NO_STORE
        )

    return endpoint


def routes() -> list[Route]:
    """Starlette routes for every registered operation, plus the OpenAPI document."""
    grouped: dict[str, dict[str, Operation]] = {}
    for op in OPERATIONS:
        grouped.setdefault(op.path, {})[op.method] = op
    result = [Route(PREFIX + "/openapi.json", _openapi_endpoint, methods=ALL_METHODS)]
    for path, by_method in grouped.items():
        handlers = {method: _endpoint(op) for method, op in by_method.items()}

        async def dispatch(
            request: Request, handlers: dict[str, Callable[[Request], Awaitable[Response]]] = handlers
        ) -> Response:
            handler = handlers.get("GET" if request.method == "HEAD" else request.method)
            if handler is None:
                return await _unrouted(request, 405, "method_not_allowed", ", ".join(sorted(handlers)))
            return await handler(request)

        result.append(Route(PREFIX + path, dispatch, methods=ALL_METHODS))
    # Anything else under the prefix: without a valid token a caller learns nothing, not even which paths exist.
    result.append(Route(PREFIX + "/{rest:path}", _not_found, methods=ALL_METHODS))
    return result


ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


async def _unrouted(request: Request, status: int, error: str, allow: str = "") -> Response:
    """401 for a caller without a valid token; otherwise the JSON 404 or 405 (with Allow)."""
    try:
        await _authenticate(request)
    except ApiError as exc:
        return _error(exc.status, exc.error, exc.description, exc.headers)
    if status == 405:
        return _error(405, error, "this path does not take this method", {"Allow": allow})
    return _error(404, error, "no such path in the admin API")


async def _not_found(request: Request) -> Response:
    return await _unrouted(request, 404, "not_found")


async def _openapi_endpoint(request: Request) -> Response:
    if request.method not in ("GET", "HEAD"):
        return await _unrouted(request, 405, "method_not_allowed", "GET")
    try:
        await _authenticate(request)
    except ApiError as exc:
        return _error(exc.status, exc.error, exc.description, exc.headers)
    return Response(services(request).admin_openapi, media_type="application/json", headers=NO_STORE)


# -- the OpenAPI document -----------------------------------------------------------------------------------

_PARAM = re.compile(r"{(\w+)}")
_ERROR_TEXT = {
    400: "Malformed request",
    401: "Missing or invalid admin token",
    404: "Not found",
    409: "Conflict",
    413: "Body too large",
    415: "Body is not JSON",
    422: "Invalid field",
    429: "Too many failed attempts",
}


def _links(created: Operation) -> dict[str, Any]:
    """OpenAPI links from a creating operation (201) to the operations on what it created, so that clients and
    fuzzers (schemathesis' stateful phase) can follow a new user's or client's id."""
    if created.method != "POST" or created.status != 201 or created.response is None:
        return {}
    fields = created.response.model_fields
    links: dict[str, Any] = {}
    for op in OPERATIONS:
        params = _PARAM.findall(op.path)
        if not params or not op.path.startswith(created.path + "/{"):
            continue
        name = params[0]
        field = name if name in fields else "id" if name.endswith("_id") and "id" in fields else None
        if field is not None:
            links[op.handler.__name__] = {
                "operationId": op.handler.__name__,
                "parameters": {name: f"$response.body#/{field}"},
            }
    return links


def openapi_document() -> dict[str, Any]:
    """OpenAPI 3.1, generated from the registry and the pydantic schemas."""
    models: set[type[BaseModel]] = {ErrorOut}
    for op in OPERATIONS:
        models.update(m for m in (op.body, op.response) if m is not None)
    _, defs = models_json_schema(
        [(m, "validation") for m in sorted(models, key=lambda m: m.__name__)],
        ref_template="#/components/schemas/{model}",
    )
    schemas = defs.get("$defs", {})

    def ref(model: type[BaseModel]) -> dict[str, str]:
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    error_response = {"content": {"application/json": {"schema": ref(ErrorOut)}}}
    paths: dict[str, Any] = {
        PREFIX + "/openapi.json": {
            "get": {
                "summary": "This document",
                "operationId": "openapi",
                "responses": {
                    "200": {"description": "OpenAPI 3.1 document"},
                    "401": {**error_response, "description": _ERROR_TEXT[401]},
                    "429": {**error_response, "description": _ERROR_TEXT[429]},
                },
            }
        }
    }
    for op in OPERATIONS:
        parameters: list[dict[str, Any]] = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "string", "minLength": 1, "maxLength": 64},
            }
            for name in _PARAM.findall(op.path)
        ]
        if op.query is not None:
            query_schema = op.query.model_json_schema()
            for name, schema in query_schema.get("properties", {}).items():
                parameters.append({"name": name, "in": "query", "required": False, "schema": schema})
        responses: dict[str, Any] = {}
        if op.response is not None:
            responses[str(op.status)] = {
                "description": "OK",
                "content": {"application/json": {"schema": ref(op.response)}},
            }
            links = _links(op)
            if links:
                responses[str(op.status)]["links"] = links
        else:
            responses[str(op.status)] = {"description": "Done"}
        codes = {401, 429, 400, *op.errors}
        if op.body is not None or op.raw_body:
            codes |= {413, 415, 422}
        if op.query is not None:
            codes |= {422}
        for code in sorted(codes):
            responses[str(code)] = {**error_response, "description": _ERROR_TEXT.get(code, "Error")}
        entry: dict[str, Any] = {
            "summary": op.summary,
            "operationId": op.handler.__name__,
            "parameters": parameters,
            "responses": responses,
        }
        if op.body is not None:
            entry["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref(op.body)}}}
        elif op.raw_body:
            raw_schema = {"type": "string", "description": "JSON Lines: one JSON object a line"}
            entry["requestBody"] = {"required": True, "content": {t: {"schema": raw_schema} for t in op.raw_body}}
        paths.setdefault(PREFIX + op.path, {})[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": "idp admin API", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }
