"""`idp users reset-link --email E` (INTERFACE §2): a single-use reset URL for support staff, audited; it works
with email off, since only support makes links then."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from idp.config import Settings
from tests.cli.test_cli import arun_idp, assert_one_line_failure
from tests.conftest import FAST_ARGON2, Running
from tests.support.admin import audit_events
from tests.support.pages import csrf_from, make_user, submit_login

StartApp = Callable[[Settings], Coroutine[Any, Any, Running]]
NEW_PASSWORD = "violet kettle drums at midnight"


async def test_reset_link_sets_a_new_password_once(migrated: str, tmp_path: Path, start_app: StartApp) -> None:
    settings = Settings(_env_file=None, database_url=migrated, issuer="http://testserver", **FAST_ARGON2)  # type: ignore[call-arg]
    running = await start_app(settings)
    user = await make_user(running.idp)
    result = await arun_idp("users", "reset-link", "--email", "Person@Example.com", database_url=migrated, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["id"] == user.id
    url = urlsplit(printed["reset_url"])
    assert url.path == "/password/reset"
    link = f"{url.path}?{url.query}"
    async with running.client() as c:
        page = await c.get(link)
        assert page.status_code == 200
        done = await c.post(
            "/password/reset",
            data={
                "token": url.query.removeprefix("token="),
                "password": NEW_PASSWORD,
                "csrf_token": csrf_from(page.text),
            },
        )
        assert done.status_code == 200, done.text
        assert (await c.get(link)).status_code == 400
        assert (await submit_login(c, "person@example.com", NEW_PASSWORD)).status_code == 303
    [event] = await audit_events(running, "admin.password_reset_link")
    assert (event.user_id, event.actor) == (user.id, "cli")
    assert url.query.removeprefix("token=") not in event.details

    missing = await arun_idp(
        "users", "reset-link", "--email", "nobody@example.com", database_url=migrated, cwd=tmp_path
    )
    assert missing.returncode != 0
    assert "no user" in assert_one_line_failure(missing)
