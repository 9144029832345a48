"""The Jinja2 environment: autoescaping, gettext-style i18n, `csrf_input()` and `static_url()`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from idp import __version__

TEMPLATES_DIR = Path(__file__).parent / "templates"


@pass_context
def _csrf_input(context: Any) -> Markup:
    request: Request = context["request"]
    token = request.app.state.idp.csrf.token(request)
    return Markup('<input type="hidden" name="csrf_token" value="%s">') % token


def _static_url(path: str) -> str:
    # The version in the query string lets the stylesheet be cached long and still change with a release.
    return f"/static/{path}?v={__version__}"


def build_templates() -> Jinja2Templates:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(default=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
    env.globals.update(csrf_input=_csrf_input, static_url=_static_url, site_name="idp")
    return Jinja2Templates(env=env)


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render `name` with `context`; every page knows the request, its language and who is signed in."""
    templates: Jinja2Templates = request.app.state.idp.templates
    values = {"lang": "en", **(context or {})}
    return templates.TemplateResponse(request, name, values, status_code=status_code, headers=headers)
