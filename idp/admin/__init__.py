"""The operators' JSON API under /admin/api (INTERFACE §5)."""

from __future__ import annotations

import functools
import json
from typing import Any

from starlette.routing import Route


def admin_routes() -> list[Route]:
    """Import the operation modules (they register themselves) and build the routes."""
    # imports before users: `/users/import` must be routed before `/users/{user_id}`.
    from idp.admin import api, audit, clients, imports, keys, users  # noqa: F401

    return api.routes()


def admin_openapi() -> dict[str, Any]:
    from idp.admin import api, audit, clients, imports, keys, users  # noqa: F401

    return api.openapi_document()


@functools.cache
def admin_openapi_bytes() -> bytes:
    """The OpenAPI document served at /admin/api/openapi.json, encoded once per process (it is fixed at build
    time; generating it from the schemas takes longer than the rest of the app's start)."""
    return json.dumps(admin_openapi(), separators=(",", ":")).encode()
