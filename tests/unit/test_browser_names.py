"""The sessions page names a browser from its User-Agent: the browser families people know, and nothing invented."""

from __future__ import annotations

import pytest

from idp.services.sessions import describe_browser

CASES = [
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 "
        "Safari/537.36 Edg/126.0.0.0",
        ("Edge", "Windows"),
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 "
        "Safari/537.36",
        ("Chrome", "macOS"),
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 "
        "Safari/605.1.15",
        ("Safari", "macOS"),
    ),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", ("Firefox", "Linux")),
    (
        "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 "
        "Chrome/121.0.0.0 Mobile Safari/537.36",
        ("Samsung Internet", "Android"),
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1",
        ("Chrome", "iPhone"),
    ),
    (
        "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 "
        "Safari/537.36",
        ("Chrome", "ChromeOS"),
    ),
    ("curl/8.5.0", ("", "")),
    ("", ("", "")),
]


@pytest.mark.parametrize(("user_agent", "expected"), CASES)
def test_the_browser_and_system_in_words(user_agent: str, expected: tuple[str, str]) -> None:
    assert describe_browser(user_agent) == expected
