"""`idp users grant-role` and `revoke-role` (INTERFACE §5): JSON out, audited, one-line errors; a real process."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from idp.config import Settings
from tests.cli.test_cli import arun_idp, assert_one_line_failure
from tests.conftest import FAST_ARGON2, Running
from tests.support.admin import audit_events
from tests.support.pages import make_user

StartApp = Callable[[Settings], Coroutine[Any, Any, Running]]


async def test_grant_and_revoke_roles(migrated: str, tmp_path: Path, start_app: StartApp) -> None:
    # pydantic-settings' `_env_file` is not in the generated __init__ signature mypy sees.
    settings = Settings(_env_file=None, database_url=migrated, issuer="http://testserver", **FAST_ARGON2)  # type: ignore[call-arg]
    running = await start_app(settings)
    user = await make_user(running.idp, "helper@example.com")

    async def idp(*args: str) -> Any:
        return await arun_idp("users", *args, database_url=migrated, cwd=tmp_path)

    granted = await idp("grant-role", "--email", "Helper@Example.com", "--role", "support")
    assert granted.returncode == 0, granted.stderr
    assert json.loads(granted.stdout) | {"created_at": None} == {
        "id": user.id,
        "email": "helper@example.com",
        "name": "",
        "disabled": False,
        "created_at": None,
        "roles": ["support"],
    }
    again = await idp("grant-role", "--email", "helper@example.com", "--role", "admin")
    assert json.loads(again.stdout)["roles"] == ["admin", "support"]
    # Granting a role held already changes nothing and is not audited twice.
    assert json.loads((await idp("grant-role", "--email", "helper@example.com", "--role", "admin")).stdout)[
        "roles"
    ] == ["admin", "support"]
    assert await running.idp.users.roles(user.id) == ["admin", "support"]

    revoked = await idp("revoke-role", "--email", "helper@example.com", "--role", "support")
    assert revoked.returncode == 0, revoked.stderr
    assert json.loads(revoked.stdout)["roles"] == ["admin"]
    assert await running.idp.users.roles(user.id) == ["admin"]

    events = [
        (e.type, e.user_id, e.actor, json.loads(e.details)["role"])
        for e in await audit_events(running)
        if "role" in e.type
    ]
    assert events == [
        ("admin.role_granted", user.id, "cli", "support"),
        ("admin.role_granted", user.id, "cli", "admin"),
        ("admin.role_revoked", user.id, "cli", "support"),
    ]

    assert "role must be one of" in assert_one_line_failure(
        await idp("grant-role", "--email", "helper@example.com", "--role", "root")
    )
    assert "no user" in assert_one_line_failure(
        await idp("grant-role", "--email", "nobody@example.com", "--role", "support")
    )
    assert await running.idp.users.roles(user.id) == ["admin"]
