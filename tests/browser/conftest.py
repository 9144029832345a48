"""Fixtures for browser scenarios: Chromium through Playwright, and a live idp on a fresh SQLite database."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import (
    BROWSER_LOCALES,
    DESKTOP,
    REQUIRE_BROWSER,
    SCREENSHOTS,
    Person,
    Screens,
    browser_problem,
    launch,
)
from tests.support.live import LiveIdp


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's Chromium, headless; skipped when it is missing, unless IDP_TEST_REQUIRE_BROWSER=1 (CI)."""
    problem = browser_problem()
    if problem:
        if REQUIRE_BROWSER:
            pytest.fail(f"the browser tests are required (IDP_TEST_REQUIRE_BROWSER) but cannot run: {problem}")
        pytest.skip(f"browser tests need Chromium and Playwright: {problem}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def live_idp(sqlite_template: Path, tmp_path: Path) -> Iterator[LiveIdp]:
    """idp served by uvicorn on a free port, on a database of its own (SQLite only: see the test modules)."""
    database = tmp_path / "idp.db"
    shutil.copy(sqlite_template, database)
    server = LiveIdp(f"sqlite+aiosqlite:///{database}")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def make_person(chromium: Any, live_idp: LiveIdp, request: pytest.FixtureRequest) -> Iterator[Callable[..., Person]]:
    """People with a browser context each (cookies of their own); screenshots in artifacts/screenshots/<test>/."""
    contexts: list[Any] = []

    def make(lang: str, scenario: str) -> Person:
        context = chromium.new_context(locale=BROWSER_LOCALES[lang], viewport=DESKTOP, accept_downloads=True)
        context.set_default_timeout(10_000)
        contexts.append(context)
        folder = SCREENSHOTS / scenario / lang
        shutil.rmtree(folder, ignore_errors=True)
        return Person(context.new_page(), live_idp.issuer, lang, Screens(folder))

    yield make
    for context in contexts:
        context.close()
