"""The operator's look (IDP_LOGO_FILE, IDP_ACCENT_COLOR), served from idp's own origin so the CSP stays as it is:
the logo as an image of `'self'`, the accent colour as a small stylesheet of `'self'` (no inline style)."""

from __future__ import annotations

from pathlib import Path

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from idp.config import LOGO_TYPES
from idp.web.request import services

# Both change only with the settings, that is with a restart; the URL carries the version for a release.
CACHE = "public, max-age=3600"


async def logo(request: Request) -> Response:
    """GET /brand/logo: the operator's logo file; 404 when none is configured."""
    settings = services(request).settings
    if not settings.logo_file:
        return Response(status_code=404, headers={"Cache-Control": "no-store"})
    path = Path(settings.logo_file)
    try:
        body = await anyio.to_thread.run_sync(path.read_bytes)
    except OSError:
        return Response(status_code=404, headers={"Cache-Control": "no-store"})
    return Response(body, media_type=LOGO_TYPES[path.suffix.lower()], headers={"Cache-Control": CACHE})


async def theme(request: Request) -> Response:
    """GET /brand/theme.css: the accent colour as the stylesheet's custom property (validated #rrggbb)."""
    color = services(request).settings.accent_color
    body = f":root {{ --accent: {color}; }}\n" if color else ""
    return Response(body, media_type="text/css", headers={"Cache-Control": CACHE})
