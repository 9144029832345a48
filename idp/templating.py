"""The Jinja2 environment: autoescaping, gettext-style i18n, `csrf_input()` and `static_url()`."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from idp import __version__
from idp.i18n import COOKIE, LOCALES, load_translations, select_locale
from idp.security import safe_next

TEMPLATES_DIR = Path(__file__).parent / "templates"


@pass_context
def _csrf_input(context: Any) -> Markup:
    request: Request = context["request"]
    token = request.app.state.idp.csrf.token(request)
    return Markup('<input type="hidden" name="csrf_token" value="%s">') % token


def _static_url(path: str) -> str:
    # The version in the query string lets the stylesheet be cached long and still change with a release.
    return f"/static/{path}?v={__version__}"


@pass_context
def _switch_url(context: Any, locale: str) -> str:
    """This page's URL with the language switched, keeping every other query parameter (such as `next`)."""
    request: Request = context["request"]
    params = [
        (k, safe_next(v) if k == "next" else v)
        for k, v in request.query_params.multi_items()
        if k not in ("lang", "ui_locales")
    ]
    params.append(("lang", locale))
    return request.url.path + "?" + urlencode(params)


def build_templates() -> dict[str, Jinja2Templates]:
    """One environment per language, each with its gettext catalog installed."""
    result = {}
    for locale in LOCALES:
        env = Environment(
            loader=FileSystemLoader(TEMPLATES_DIR),
            autoescape=select_autoescape(default=True),
            extensions=["jinja2.ext.i18n"],
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.install_gettext_translations(load_translations(locale), newstyle=True)  # type: ignore[attr-defined]
        env.globals.update(
            csrf_input=_csrf_input, static_url=_static_url, switch_url=_switch_url, site_name="idp", locales=LOCALES
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
    templates: Jinja2Templates = request.app.state.idp.templates[locale]
    values = {"lang": locale, **(context or {})}
    response = templates.TemplateResponse(request, name, values, status_code=status_code, headers=headers)
    chosen_here = request.query_params.get("lang") or request.query_params.get("ui_locales")
    if chosen_here and request.cookies.get(COOKIE) != locale:
        response.set_cookie(COOKIE, locale, max_age=365 * 86400, path="/", httponly=True, samesite="lax")
    return response
