"""Redirects the account pages share: to /login with a continuation back to the page that asked."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.responses import RedirectResponse

from idp.security import safe_next


def login_url(next_url: str, *, reauth: bool = False) -> str:
    """/login with `next` (kept on this origin by safe_next); `reauth` asks for the password again even when
    signed in (the pages that change how the person signs in want a recent sign-in)."""
    params = {"next": safe_next(next_url)}
    if reauth:
        params["reauth"] = "1"
    return "/login?" + urlencode(params)


def to_login(next_url: str, *, reauth: bool = False) -> RedirectResponse:
    """303 to `login_url(next_url, reauth=reauth)`: sign in (again), then come back to `next_url`."""
    return RedirectResponse(login_url(next_url, reauth=reauth), status_code=303)
