"""The console's "Email a password-reset link" (INTERFACE §5): sent through real SMTP, never shown on the page.
(With email off: tests/http/console/test_console.py.)"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from idp.config import Settings
from tests.conftest import Running
from tests.http.account.conftest import IDLE_WORKER, deliver_mail
from tests.http.console.conftest import StaffBrowser
from tests.support.admin import audit_events
from tests.support.pages import csrf_from, make_user
from tests.support.smtp import SmtpServer, links_in, smtp_server

StartApp = Callable[[Settings], Coroutine[Any, Any, Running]]


@pytest.fixture
def smtp() -> Any:
    with smtp_server() as server:
        yield server


@pytest.fixture
async def running(start_app: StartApp, make_settings: Callable[..., Settings], smtp: SmtpServer) -> Running:
    return await start_app(make_settings(smtp_url=smtp.url, **IDLE_WORKER))


async def test_reset_link_is_emailed_and_audited(
    running: Running, smtp: SmtpServer, staff_browser: StaffBrowser
) -> None:
    seeker = await make_user(running.idp)
    async with staff_browser("helper@staff.example", "support") as browser:
        page = await browser.get(f"/admin/users/{seeker.id}")
        assert f'action="/admin/users/{seeker.id}/password-reset"' in page.text
        sent = await browser.post(f"/admin/users/{seeker.id}/password-reset", data={"csrf_token": csrf_from(page.text)})
        assert sent.status_code == 303
        assert sent.headers["location"].endswith("?done=link")
        shown = await browser.get(sent.headers["location"])
        assert await deliver_mail(running) == 1
        [message] = smtp.inbox.to("person@example.com")
        [link] = [url for url in links_in(message) if "/password/reset" in url]
        assert link not in shown.text
    [event] = await audit_events(running, "admin.password_reset_link")
    assert event.actor.startswith("staff:")
    assert link.rsplit("=", 1)[-1] not in event.details
