"""The one renderer of idp's own error pages (errors/error.html), for pages and endpoints alike."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from idp.templating import render
from idp.web import messages


def error_page(
    request: Request, status: int, title: str, message: str, headers: Mapping[str, str] | None = None
) -> HTMLResponse:
    """An HTML error page with `status`; `title` and `message` are shown through the translation catalog."""
    return render(
        request,
        "errors/error.html",
        {"status": status, "title": title, "message": message},
        status_code=status,
        headers=dict(headers) if headers is not None else None,
    )


def csrf_failed(request: Request) -> HTMLResponse:
    """403: the form's CSRF token was missing or did not match."""
    return error_page(request, 403, messages.FORM_EXPIRED, messages.FORM_EXPIRED_TEXT)


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's HTTPException (404, 405, ...) as an error page."""
    assert isinstance(exc, HTTPException)
    title, message = {
        404: (messages.NOT_FOUND, messages.NOT_FOUND_TEXT),
        405: (messages.NOT_ALLOWED, messages.NOT_ALLOWED_TEXT),
    }.get(exc.status_code, (messages.ERROR, messages.BAD_REQUEST))
    return error_page(request, exc.status_code, title, message, exc.headers)
