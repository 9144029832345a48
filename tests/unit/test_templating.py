"""Text reaching a template through gettext (`_()`, `{% trans %}`) is escaped like any other value."""

from __future__ import annotations

import pytest

from idp.templating import build_templates

TEMPLATES = build_templates()


@pytest.mark.parametrize("locale", ["en", "nb"])
def test_a_message_from_code_is_escaped(locale: str) -> None:
    env = TEMPLATES[locale].env
    rendered = env.from_string("<p>{{ _(error) }}</p>").render(error='unknown client "<script>alert(1)</script>"')
    assert "<script>" not in rendered
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered


def test_translations_and_their_variables_still_work() -> None:
    env = TEMPLATES["nb"].env
    page = env.from_string(
        "{{ _('Sign in') }}|{% trans name=name %}{{ name }} wants to use your account{% endtrans %}|"
        "{% trans count=n %}{{ count }} backup code left{% pluralize %}{{ count }} backup codes left{% endtrans %}"
    ).render(name="<b>Jobs & co</b>", n=3)
    assert page == "Logg inn|&lt;b&gt;Jobs &amp; co&lt;/b&gt; vil bruke kontoen din|3 reservekoder igjen"


def test_a_stray_percent_sign_in_a_message_is_shown_not_a_server_error() -> None:
    env = TEMPLATES["en"].env
    assert env.from_string("{{ _(m) }}").render(m="100% %(x)s %d <i>") == "100% %(x)s %d &lt;i&gt;"
