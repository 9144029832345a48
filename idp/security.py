"""The security headers' policy (applied by idp.web.edge), the cookie policy, CSRF tokens, and safe continuation
URLs."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Send

from idp.auth.tokens import hmac_hex, new_opaque
from idp.oidc.limits import MAX_CONTINUATION

# No inline script or style anywhere, so the policy can stay this strict. form-action is left out on purpose:
# browsers apply it to the redirect that follows a POST, which must be able to reach a relying party.
# Script only from idp's own static files (progressive enhancement: a copy button, the browser's time zone); never
# inline, never eval.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def csp_with_image(origin: str) -> str:
    """The page policy, with images also from `origin` (a job board's registered https logo, checked to be a bare
    `https://host[:port]`): script, style and everything else stay as strict as on every other page."""
    return CSP.replace("img-src 'self' data:", f"img-src 'self' data: {origin}")


@dataclass(frozen=True)
class CookiePolicy:
    """Names and attributes of idp's cookies; `__Host-` names when served over https."""

    secure: bool

    @property
    def session_name(self) -> str:
        return "__Host-idp_session" if self.secure else "idp_session"

    @property
    def csrf_name(self) -> str:
        return "__Host-idp_csrf" if self.secure else "idp_csrf"

    @property
    def device_name(self) -> str:
        """The long-lived cookie naming this browser, so its sign-in attempts count apart from strangers'."""
        return "__Host-idp_device" if self.secure else "idp_device"

    @property
    def passkey_signin_name(self) -> str:
        """The challenge of "Sign in with a passkey" on /login, MACed (no session exists yet to hold it)."""
        return "__Host-idp_passkey" if self.secure else "idp_passkey"

    def set(self, response: Response, name: str, value: str, max_age: int | None = None) -> None:
        response.set_cookie(name, value, max_age=max_age, path="/", secure=self.secure, httponly=True, samesite="lax")

    def clear(self, response: Response, name: str) -> None:
        response.delete_cookie(name, path="/", secure=self.secure, httponly=True, samesite="lax")


class Csrf:
    """Double-submit CSRF: an HttpOnly random seed cookie, and forms carry HMAC(secret, seed)."""

    def __init__(self, key: bytes, cookies: CookiePolicy) -> None:
        self._key = key
        self._cookies = cookies

    def token(self, request: Request) -> str:
        """The token for this browser's forms, creating the seed cookie if it has none yet."""
        state = request.scope.setdefault("state", {})
        seed = state.get("csrf_seed")
        if seed is None:
            seed = request.cookies.get(self._cookies.csrf_name, "")
            if not _plausible(seed):
                seed = new_opaque(24)
                state["csrf_new"] = True
            state["csrf_seed"] = seed
        return hmac_hex(self._key, "csrf", seed)

    def check(self, request: Request, submitted: str | None) -> bool:
        """True when the submitted token matches this browser's seed."""
        seed = request.cookies.get(self._cookies.csrf_name, "")
        if not submitted or not _plausible(seed):
            return False
        # Compared as bytes: compare_digest raises TypeError on a str that is not ASCII (a 500, not a 403).
        return hmac.compare_digest(submitted.encode(), hmac_hex(self._key, "csrf", seed).encode())


def _plausible(seed: str) -> bool:
    """A seed we could have issued: 16-64 characters of the URL-safe base64 alphabet (ASCII only)."""
    return 16 <= len(seed) <= 64 and seed.isascii() and seed.replace("-", "").replace("_", "").isalnum()


def safe_next(target: str | None, default: str = "/account") -> str:
    """A continuation URL that stays inside idp: a path on this origin, or `default`.

    Refuses absolute URLs, scheme-relative `//host`, backslash tricks browsers read as `//`, and control
    characters, so `next` can never become an open redirect; and anything longer than idp's own continuations.
    """
    if not target or len(target) > MAX_CONTINUATION:
        return default
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    if any(ord(c) < 32 or ord(c) == 127 for c in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


async def too_large(send: Send, json_api: bool = False) -> None:
    """413 for a body over the limit (idp.web.edge); the admin API's clients get its JSON error shape
    (INTERFACE §5), everyone else plain text."""
    if json_api:
        body = b'{"error":"invalid_request","error_description":"the body is too large"}'
        content_type = b"application/json"
    else:
        body = b"Request body too large."
        content_type = b"text/plain; charset=utf-8"
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", b"%d" % len(body)),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
