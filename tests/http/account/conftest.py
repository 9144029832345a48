"""Fixtures for the self-service account pages: a real SMTP server and an app that sends through it, whose
outbox worker stays idle (tests deliver with `deliver_mail`, in order)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from idp.config import Settings
from tests.conftest import Running
from tests.support.smtp import SmtpServer, smtp_server

IDLE_WORKER = {"outbox_poll_seconds": 300}


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def mail_settings(make_settings: Callable[..., Settings], smtp: SmtpServer) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        return make_settings(smtp_url=smtp.url, site_name="Jobbsøk ID", **IDLE_WORKER, **overrides)

    return make


async def deliver_mail(running: Running) -> int:
    """Send what the outbox holds now (what the background worker would do on its next round)."""
    return await running.idp.outbox.run_once()
