"""`idp users unlock --email E` (INTERFACE §2): clears the attempt limits on the account, audited; a real process."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from idp.config import Settings
from tests.cli.test_cli import arun_idp, assert_one_line_failure
from tests.conftest import FAST_ARGON2, Running
from tests.support.admin import audit_events
from tests.support.pages import PASSWORD, make_user, submit_login

StartApp = Callable[[Settings], Coroutine[Any, Any, Running]]


async def test_users_unlock_opens_a_locked_account(migrated: str, tmp_path: Path, start_app: StartApp) -> None:
    settings = Settings(_env_file=None, database_url=migrated, issuer="http://testserver", **FAST_ARGON2)  # type: ignore[call-arg]
    running = await start_app(settings)
    user = await make_user(running.idp)
    async with running.client() as client:
        for _ in range(5):
            assert (await submit_login(client, "person@example.com", "wrong")).status_code == 400
        assert (await submit_login(client, "person@example.com", PASSWORD)).status_code == 429

        result = await arun_idp("users", "unlock", "--email", "Person@Example.com", database_url=migrated, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["id"] == user.id

        assert (await submit_login(client, "person@example.com", PASSWORD)).status_code == 303
    [event] = await audit_events(running, "admin.user_unlocked")
    assert (event.user_id, event.actor) == (user.id, "cli")

    missing = await arun_idp("users", "unlock", "--email", "nobody@example.com", database_url=migrated, cwd=tmp_path)
    assert missing.returncode != 0
    assert "no user" in assert_one_line_failure(missing)
