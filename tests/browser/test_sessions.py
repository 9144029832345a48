"""The sessions page in a real Chromium (INTERFACE §4), English and Bokmål: two browsers of one person, one signs
the other out. Screenshots at desktop and 360 px wide (no sideways scrolling) under artifacts/screenshots/."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support.browser import Person
from tests.support.live import EMAIL, PASSWORD, LiveIdp


@pytest.mark.parametrize("lang", ["en", "nb"])
def test_one_browser_signs_the_other_out(lang: str, live_idp: LiveIdp, make_person: Callable[..., Person]) -> None:
    live_idp.make_user()
    laptop = make_person(lang, "sessions-laptop")
    phone = make_person(lang, "sessions")
    for person in (laptop, phone):
        person.do_open("/account/sessions", "sign-in")
        person.expect_at("/login")
        person.do_sign_in(EMAIL, PASSWORD, name="sessions")
        person.expect_at("/account/sessions")
    phone.expect_heading("Where you are signed in")
    assert phone.page.locator("li.session").count() == 2
    assert phone.page.locator("li.session.current").count() == 1

    # "Sign out" on the session that is not this browser's.
    with phone.page.expect_navigation():
        phone.page.click("li.session:not(.current) button[type=submit]")
    phone.screens.shoot(phone.page, "signed-out-one")
    assert phone.page.locator("li.session").count() == 1

    laptop.do_open("/account", "after")
    laptop.expect_at("/login")
