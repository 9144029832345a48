"""The Jinja2 environment: autoescaping, gettext-style i18n, `csrf_input()` and `static_url()`."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.support import NullTranslations
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from idp import __version__
from idp.i18n import COOKIE, LOCALE_QUERY, LOCALES, select_locale, translations
from idp.security import csp_with_image, safe_next
from idp.template_cache import MemoryBytecodeCache
from idp.web.params import read_query_leniently
from idp.web.request import services

TEMPLATES_DIR = Path(__file__).parent / "templates"


# Only for environments with the options of `build_templates`: the options are compiled into the code.
_PAGES = MemoryBytecodeCache()


@pass_context
def _csrf_input(context: Any) -> Markup:
    request: Request = context["request"]
    token = services(request).csrf.token(request)
    return Markup('<input type="hidden" name="csrf_token" value="%s">') % token


def _static_url(path: str) -> str:
    # The version in the query string lets the stylesheet be cached long and still change with a release.
    return f"/static/{path}?v={__version__}"


@pass_context
def _switch_url(context: Any, locale: str) -> str:
    """This page's URL with the language switched, keeping every other query parameter (such as `next`)."""
    request: Request = context["request"]
    # Re-emits the query as it came (repeats and all), changing only the language: it reads nothing for itself.
    params = [
        (k, safe_next(v) if k == "next" else v)
        for k, v in request.query_params.multi_items()
        if k not in ("lang", "ui_locales")
    ]
    params.append(("lang", locale))
    return request.url.path + "?" + urlencode(params)


# The browser's time zone, as idp's own script (static/tz.js) reports it; not a secret, and checked before use.
TZ_COOKIE = "idp_tz"
_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+){0,3}")


def browser_zone(request: Request) -> ZoneInfo | None:
    """The person's time zone when their browser told it (a known IANA name), else None."""
    name = request.cookies.get(TZ_COOKIE, "")
    if not name or len(name) > 64 or not _ZONE_NAME.fullmatch(name):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


@pass_context
def _local_time(context: Any, moment: datetime) -> str:
    """A date and time in the person's zone when the browser told it; otherwise in UTC, saying so."""
    zone = browser_zone(context["request"])
    if zone is None:
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


@pass_context
def _local_date(context: Any, moment: datetime) -> str:
    """The date in the person's zone when the browser told it; otherwise the UTC date, saying so."""
    zone = browser_zone(context["request"])
    if zone is None:
        return moment.astimezone(UTC).strftime("%Y-%m-%d (UTC)")
    return moment.astimezone(zone).strftime("%Y-%m-%d")


def _escaped(text: str, variables: dict[str, Any]) -> Markup:
    """`text` as plain text (escaped, never trusted as HTML), with `variables` (escaped too) put in its %(name)s."""
    escaped = escape(text)
    try:
        return escaped % variables
    except (KeyError, ValueError, TypeError):
        # A message from code may hold a stray `%`: show it as it is rather than fail the page.
        return escaped


def _escaping_gettext(translations: NullTranslations) -> tuple[Callable[..., Markup], Callable[..., Markup]]:
    """gettext and ngettext for templates whose result is escaped like any other value.

    Jinja's newstyle gettext marks the translated text itself as safe Markup, so a message that reaches `_()`
    from code (an error text that quotes input) would be rendered as HTML; messages here hold no markup."""

    def gettext(message: str, **variables: Any) -> Markup:
        return _escaped(translations.gettext(message), variables)

    def ngettext(singular: str, plural: str, num: int, **variables: Any) -> Markup:
        variables.setdefault("num", num)
        return _escaped(translations.ngettext(singular, plural, num), variables)

    return gettext, ngettext


def build_templates(
    site_name: str = "idp",
    support_url: str = "",
    *,
    self_service: bool = False,
    logo: bool = False,
    theme: bool = False,
) -> dict[str, Jinja2Templates]:
    """One environment per language, each with its gettext catalog installed."""
    result = {}
    for locale in LOCALES:
        env = Environment(
            loader=FileSystemLoader(TEMPLATES_DIR),
            autoescape=select_autoescape(default=True),
            extensions=["jinja2.ext.i18n"],
            trim_blocks=True,
            lstrip_blocks=True,
            bytecode_cache=_PAGES,
        )
        catalog = translations(locale)
        # newstyle makes {% trans %} blocks call gettext with keyword variables; the callables escape (see above).
        # jinja2.ext.i18n adds this method to the Environment at run time; the stubs do not know it.
        env.install_gettext_translations(catalog, newstyle=True)  # type: ignore[attr-defined]
        gettext, ngettext = _escaping_gettext(catalog)
        env.globals.update(gettext=gettext, ngettext=ngettext)
        env.globals.update(
            csrf_input=_csrf_input,
            static_url=_static_url,
            switch_url=_switch_url,
            local_time=_local_time,
            local_date=_local_date,
            site_name=site_name,
            support_url=support_url,
            # Email works, so "Forgot your password?" and sign-up can be offered (INTERFACE §2).
            self_service=self_service,
            # The operator's logo (/brand/logo) and accent colour (/brand/theme.css), when configured.
            brand_logo=logo,
            brand_theme=theme,
            version=__version__,
            locales=LOCALES,
        )
        result[locale] = Jinja2Templates(env=env)
    return result


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render `name` with `context` in the request's language; a language chosen here is remembered."""
    locale = select_locale(request)
    templates = services(request).templates[locale]
    values = {"lang": locale, **(context or {})}
    # A job board's registered logo is the one image from elsewhere: only its origin is added to img-src.
    origin = getattr(values.get("board"), "logo_origin", None)
    if origin:
        headers = {**(headers or {}), "Content-Security-Policy": csp_with_image(origin)}
    response = templates.TemplateResponse(request, name, values, status_code=status_code, headers=headers)
    query = read_query_leniently(request, LOCALE_QUERY)
    chosen_here = query.get("lang") or query.get("ui_locales")
    if chosen_here and request.cookies.get(COOKIE) != locale:
        services(request).cookies.set(response, COOKIE, locale, max_age=365 * 86400)
    return response
