"""The edge (idp.web.edge): the hot endpoints go where the router would send them, a trusted proxy's address is
believed, and an unhandled exception is a bare 500 with its access line."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Match, Route

from idp.config import Settings
from idp.ops.listeners import Listener
from idp.ops.metrics import Metrics
from idp.security import CookiePolicy
from idp.web.edge import HOT_PATHS, EdgeOptions, IdpStarlette, _hot_table
from tests.conftest import Running

EXPECTED_HOT = {
    ("/.well-known/openid-configuration", "GET"),
    ("/jwks", "GET"),
    ("/token", "POST"),
    ("/introspect", "POST"),
    ("/userinfo", "GET"),
    ("/userinfo", "POST"),
    ("/revoke", "POST"),
}


def _router_choice(routes: list[BaseRoute], path: str, method: str) -> BaseRoute | None:
    scope = {"type": "http", "path": path, "method": method, "root_path": "", "headers": []}
    for route in routes:
        if route.matches(scope)[0] is Match.FULL:
            return route
    return None


async def test_the_hot_table_holds_the_routes_the_router_would_choose(running: Running) -> None:
    app = running.app
    table = _hot_table(app)
    assert set(table) == EXPECTED_HOT
    (public,) = [r for r in app.router.routes if isinstance(r, Listener) and not r.management]
    for path, method in table:
        assert path in HOT_PATHS
        assert table[(path, method)].route is _router_choice(public.routes, path, method)


async def test_a_hot_route_is_counted_and_logged_under_its_template(
    running: Running, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("INFO", logger="idp.access"):
        response = await client.post("/token", data={"grant_type": "client_credentials"})
    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["cache-control"] == "no-store"
    (line,) = [r for r in caplog.records if r.name == "idp.access"]
    assert line.__dict__["route"] == "/token"
    assert line.__dict__["status"] == 401
    exposition = running.idp.metrics.exposition().decode()
    assert 'idp_http_requests_total{method="POST",route="/token",status="401"} 1.0' in exposition


async def test_a_trusted_proxy_names_the_client(
    start_app: Callable[..., Coroutine[Any, Any, Running]],
    make_settings: Callable[..., Settings],
    caplog: pytest.LogCaptureFixture,
) -> None:
    running = await start_app(make_settings(trusted_proxies="10.0.0.0/8"))
    headers = {"x-forwarded-for": "203.0.113.9"}
    with caplog.at_level("INFO", logger="idp.access"):
        async with running.client(ip="10.1.2.3") as proxied:
            assert (await proxied.get("/jwks", headers=headers)).status_code == 200
        async with running.client(ip="192.0.2.1") as untrusted:
            assert (await untrusted.get("/jwks", headers=headers)).status_code == 200
    lines = [r.__dict__ for r in caplog.records if r.name == "idp.access"]
    assert [line["client_ip"] for line in lines] == ["203.0.113.9", "192.0.2.1"]


async def _boom(request: Request) -> PlainTextResponse:
    raise RuntimeError("boom")


async def test_an_unhandled_exception_is_a_bare_500_with_an_access_line(caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics(lambda: 0)
    options = EdgeOptions(metrics, CookiePolicy(secure=False), hsts=False, management_port=0, max_body_bytes=100)
    app = IdpStarlette(edge=options, routes=[Route("/boom", _boom, methods=["GET", "POST"])])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    with caplog.at_level("INFO", logger="idp.access"):
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.get("/boom")
            too_big = await client.post("/boom", content=b"x" * 101)
    assert response.status_code == 500
    assert response.text == "Internal Server Error"
    assert too_big.status_code == 413
    assert too_big.headers["x-frame-options"] == "DENY"
    statuses = [r.__dict__["status"] for r in caplog.records if r.name == "idp.access"]
    assert statuses == [500, 413]
