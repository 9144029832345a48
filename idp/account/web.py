"""Small helpers shared by the page handlers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import HTMLResponse

from idp.account import messages
from idp.templating import render

if TYPE_CHECKING:
    from idp.app import Idp


def services(request: Request) -> Idp:
    return request.app.state.idp  # type: ignore[no-any-return]


def client_ip(request: Request) -> str:
    """The client address: the TCP peer, or what a trusted proxy said (applied by the proxy middleware)."""
    return request.client.host if request.client else ""


def session_cookie(request: Request) -> str | None:
    return request.cookies.get(services(request).cookies.session_name)


def error_page(
    request: Request, status: int, title: str, message: str, headers: dict[str, str] | None = None
) -> HTMLResponse:
    return render(
        request,
        "errors/error.html",
        {"status": status, "title": title, "message": message},
        status_code=status,
        headers=headers,
    )


def csrf_failed(request: Request) -> HTMLResponse:
    return error_page(request, 403, messages.FORM_EXPIRED, messages.FORM_EXPIRED_TEXT)
