"""Languages: English and Norwegian Bokmål from gettext catalogs (Babel), chosen by `ui_locales`, then the
`lang` cookie (the switcher), then `Accept-Language`."""

from __future__ import annotations

import functools
import io
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from starlette.requests import Request

from idp.web.params import read_query_leniently

LOCALES = ("en", "nb")
DEFAULT = "en"
LOCALES_DIR = Path(__file__).parent / "locales"
COOKIE = "idp_lang"
# Where a request names its language: the switcher's `lang`, or a relying party's `ui_locales` (OIDC Core §3.1.2.1).
LOCALE_QUERY = {"lang": 100, "ui_locales": 100}
# Norwegian in any written form is served in Bokmål, the form the catalogs are written in.
ALIASES = {"en": "en", "nb": "nb", "no": "nb", "nn": "nb"}


def N_(message: str) -> str:
    """Mark a message for extraction; it is translated where it is shown (`_()` in the template)."""
    return message


def load_translations(locale: str) -> NullTranslations:
    """The catalog for `locale`, compiled from its .po file in memory (no compiled files in the tree)."""
    po = LOCALES_DIR / locale / "LC_MESSAGES" / "messages.po"
    if locale == DEFAULT or not po.is_file():
        return NullTranslations()
    with po.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer)


@functools.cache
def translations(locale: str) -> NullTranslations:
    """The catalog for `locale`, loaded once per process (for text outside templates)."""
    return load_translations(locale)


def _match(tag: str) -> str | None:
    primary = tag.strip().lower().replace("_", "-").split("-")[0]
    return ALIASES.get(primary)


def from_ui_locales(value: str | None) -> str | None:
    """The first supported language in an OIDC `ui_locales` list (space-separated BCP 47 tags)."""
    for tag in (value or "").split()[:10]:
        locale = _match(tag)
        if locale:
            return locale
    return None


def from_accept_language(header: str) -> str | None:
    """The supported language the browser prefers most (RFC 9110 §12.5.4 q-values)."""
    choices: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        locale = _match(tag)
        if locale and quality > 0:
            choices.append((-quality, index, locale))
    return min(choices)[2] if choices else None


def select_locale(request: Request) -> str:
    """ui_locales or the switcher's `lang` in this request, then the cookie, then Accept-Language."""
    query = read_query_leniently(request, LOCALE_QUERY)
    chosen = from_ui_locales(query.get("lang")) or from_ui_locales(query.get("ui_locales"))
    if chosen:
        return chosen
    cookie = request.cookies.get(COOKIE)
    if cookie in LOCALES:
        return cookie
    return from_accept_language(request.headers.get("accept-language", "")) or DEFAULT
