"""A page's form POST, read and CSRF-checked in one step, so every handler refuses bad forms the same way."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response

from idp.errors import UnreadableInput
from idp.web import messages
from idp.web.errors import csrf_failed, error_page
from idp.web.params import read_form
from idp.web.request import services


async def page_form(request: Request, limits: Mapping[str, int]) -> dict[str, str] | Response:
    """The form's fields (within `limits`, which must name `csrf_token`), or the error page to answer with: the
    form unreadable (4xx) or its CSRF token missing or wrong (403). Nothing is changed in either case."""
    try:
        form = await read_form(request, limits)
    except UnreadableInput as exc:
        return error_page(request, exc.status, messages.BAD_REQUEST, messages.FORM_UNREADABLE)
    if not services(request).csrf.check(request, form["csrf_token"]):
        return csrf_failed(request)
    return form
