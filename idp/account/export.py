"""`/account/export` (issue #13): "download my data", a JSON attachment of what idp keeps about the person."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from idp.web.request import client_ip, services, session_cookie


async def export_data(request: Request) -> Response:
    """Only for the signed-in person; never cached, and saved as a file rather than shown."""
    idp = services(request)
    active = await idp.sessions.current(session_cookie(request))
    if active is None:
        return RedirectResponse("/login?" + urlencode({"next": "/account/export"}), status_code=303)
    document = await idp.export.export(active, site_name=idp.settings.site_name, client_ip=client_ip(request))
    body = json.dumps(document, ensure_ascii=False, indent=2, sort_keys=False) + "\n"
    return Response(
        body.encode(),
        media_type="application/json",
        headers={
            "Content-Disposition": 'attachment; filename="account-data.json"',
            "Cache-Control": "no-store",
        },
    )
