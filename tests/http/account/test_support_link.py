"""The second-step pages link to IDP_SUPPORT_URL for a person who lost both phone and backup codes (INTERFACE §4),
once, in the page body (never inside the <title>), and not at all when no support URL is set."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from idp.clock import FrozenClock
from idp.config import Settings
from tests.conftest import Running
from tests.support.mfa import authenticator_added_elsewhere
from tests.support.pages import PASSWORD, make_user, submit_login

StartApp = Callable[[Settings], Coroutine[Any, Any, Running]]
SUPPORT = "https://help.example.com/lost-phone"
TEXT = "Lost your phone and your backup codes? Contact support"


@pytest.mark.parametrize("support_url", [SUPPORT, ""])
async def test_verify_and_recovery_pages_link_to_support(
    start_app: StartApp, make_settings: Callable[..., Settings], clock: FrozenClock, support_url: str
) -> None:
    running = await start_app(make_settings(support_url=support_url))
    person = await make_user(running.idp)
    await authenticator_added_elsewhere(running, person.id, clock.now())
    async with running.client() as c:
        signed = await submit_login(c, person.email, PASSWORD)
        assert signed.headers["location"].startswith("/login/verify")
        for path in ("/login/verify", "/login/recovery"):
            page = await c.get(path)
            assert page.status_code == 200
            title = page.text.split("<title>", 1)[1].split("</title>", 1)[0]
            assert "support" not in title.lower()
            if support_url:
                assert page.text.count(f'href="{SUPPORT}"') == 1
                assert TEXT in page.text
            else:
                assert TEXT not in page.text
