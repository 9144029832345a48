"""Operations (INTERFACE §6): health, readiness, Prometheus metrics, and JSON logs that never hold a secret."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from idp.config import Settings
from idp.logging import JsonFormatter, redact, request_id_var
from idp.store.db import Database
from tests.conftest import Running
from tests.support.pages import PASSWORD, csrf_token, make_user, submit_login

StartApp = Callable[[Settings], Coroutine[Any, Any, Running]]
# The ASGI scope's server port is the URL's: this base reaches the management listener (IDP_MANAGEMENT_PORT).
MANAGEMENT = "http://testserver:9000"


async def scrape(running: Running) -> str:
    async with running.client(base_url=MANAGEMENT) as management:
        response = await management.get("/metrics")
    assert response.status_code == 200
    return response.text


async def test_healthz_answers_while_the_process_is_up(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["cache-control"] == "no-store"


async def test_readyz_answers_when_the_database_does(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["database"] == "up"


UNREACHABLE = [
    "postgresql+asyncpg://postgres@127.0.0.1:1/idp",
    "sqlite+aiosqlite:///{tmp}/missing/directory/idp.db",
]


# The lifespan loads signing keys from the database, so an app cannot even start without one: readiness is
# tested by pointing a started app's engine at a database that does not answer.
@pytest.mark.parametrize("unreachable", UNREACHABLE, ids=["postgresql-nothing-listening", "sqlite-missing-directory"])
async def test_readyz_is_503_while_the_database_is_unreachable(
    running: Running, client: httpx.AsyncClient, tmp_path: Path, unreachable: str
) -> None:
    assert (await client.get("/readyz")).status_code == 200
    healthy = running.idp.db.engine
    running.idp.db.engine = Database(unreachable.format(tmp=tmp_path)).engine
    try:
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
    finally:
        await running.idp.db.engine.dispose()
        running.idp.db.engine = healthy
    assert health.status_code == 200  # alive, just not ready
    assert ready.status_code == 503
    assert ready.json() == {"status": "unavailable", "database": "down"}
    assert ready.headers["x-frame-options"] == "DENY"
    assert (await client.get("/readyz")).status_code == 200  # ready again once the database answers


def metric_value(text: str, sample: str) -> float:
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{sample} not in the metrics:\n{text}")


async def test_metrics_count_requests_by_route_and_sign_in_outcome(running: Running, client: httpx.AsyncClient) -> None:
    await make_user(running.idp)
    await client.get("/login")
    await client.get("/no/such/page")
    assert (await submit_login(client, "person@example.com", "wrong password here")).status_code == 400

    async with running.client(base_url=MANAGEMENT) as management:
        response = await management.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "# TYPE idp_http_requests_total counter" in text
    assert metric_value(text, 'idp_http_requests_total{method="GET",route="/login",status="200"}') == 2
    assert metric_value(text, 'idp_http_requests_total{method="POST",route="/login",status="400"}') == 1
    # Unknown paths share one label, so scanners cannot blow up the number of series.
    assert metric_value(text, 'idp_http_requests_total{method="GET",route="unmatched",status="404"}') == 1
    assert "/no/such/page" not in text
    assert "# TYPE idp_http_request_duration_seconds histogram" in text
    assert metric_value(text, 'idp_http_request_duration_seconds_count{route="/login"}') == 3
    assert metric_value(text, 'idp_login_attempts_total{outcome="failure"}') == 1
    assert "# TYPE idp_password_pool_queue_length gauge" in text
    assert metric_value(text, "idp_password_pool_queue_length") == 0


async def test_metrics_count_successes(running: Running, client: httpx.AsyncClient) -> None:
    await make_user(running.idp)
    await submit_login(client, "person@example.com", PASSWORD)
    text = await scrape(running)
    assert metric_value(text, 'idp_login_attempts_total{outcome="success"}') == 1


async def test_two_apps_in_one_process_keep_their_own_metrics(
    start_app: StartApp, settings: Settings, running: Running
) -> None:
    other = await start_app(settings)
    async with running.client() as client:
        await client.get("/healthz")
    text = await scrape(other)
    assert 'route="/healthz"' not in text


async def test_metrics_are_served_only_on_the_management_port(running: Running, client: httpx.AsyncClient) -> None:
    public = await client.get("/metrics")
    assert public.status_code == 404
    assert "idp_http_requests_total" not in public.text
    async with running.client(base_url=MANAGEMENT) as management:
        assert (await management.get("/metrics")).status_code == 200
        assert (await management.get("/healthz")).json() == {"status": "ok"}
        assert (await management.get("/readyz")).json()["database"] == "up"
        # The management listener serves nothing else: no sign-in page, no admin API, no static files.
        for path in ("/login", "/admin/api/users", "/static/idp.css", "/.well-known/openid-configuration"):
            assert (await management.get(path)).status_code == 404, path
    for path in ("/healthz", "/readyz", "/login"):
        assert (await client.get(path)).status_code == 200, path


async def test_management_port_zero_serves_metrics_nowhere(
    start_app: StartApp, make_settings: Callable[..., Settings]
) -> None:
    app = await start_app(make_settings(management_port=0))
    for base in ("http://testserver", MANAGEMENT, "http://testserver:0"):
        async with app.client(base_url=base) as http:
            assert (await http.get("/metrics")).status_code == 404, base
            assert (await http.get("/login")).status_code == 200, base


async def test_invented_methods_and_paths_share_one_label_each(running: Running, client: httpx.AsyncClient) -> None:
    for index in range(40):
        method = f"INVENTED{index}" if index % 2 else "X" * 4096 + str(index)
        response = await client.request(method, f"/scan/{index}" if index % 3 else "/login")
        assert response.status_code in (404, 405)
    text = await scrape(running)
    assert "INVENTED" not in text
    assert "XXXX" not in text
    assert "/scan/" not in text
    assert metric_value(text, 'idp_http_requests_total{method="other",route="unmatched",status="404"}') == 26
    assert metric_value(text, 'idp_http_requests_total{method="other",route="/login",status="405"}') == 14
    assert len(text) < 20_000  # one series each, however many methods were invented


async def test_a_database_error_does_not_carry_its_parameters(running: Running) -> None:
    secret = "$argon2id$v=19$m=1024,t=1,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNo"
    with pytest.raises(DBAPIError) as caught:
        async with running.idp.db.transaction() as session:
            await session.execute(
                text("INSERT INTO users (id, email) VALUES (:id, :email)"), {"id": secret, "email": None}
            )
    assert secret not in str(caught.value)
    assert "parameters hidden" in str(caught.value)


class Captured:
    """Everything the server logged through a JsonFormatter, one string per line."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def lines(self) -> list[str]:
        return self.stream.getvalue().splitlines()

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]


class _ServerOnly(logging.Filter):
    # httpx and httpcore log for the test's client, which is not part of the server.
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith(("httpx", "httpcore"))


@pytest.fixture
def captured_logs() -> Iterator[Captured]:
    captured = Captured()
    handler = logging.StreamHandler(captured.stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(_ServerOnly())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)  # the server's default IDP_LOG_LEVEL
    try:
        yield captured
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


async def test_logs_are_json_with_request_ids_and_no_secrets(
    running: Running, client: httpx.AsyncClient, captured_logs: Captured
) -> None:
    secret_password = "Zebra-Quokka-4711-distinctive"
    await make_user(running.idp, password=secret_password)
    token = await csrf_token(client)
    failed = await client.post(
        "/login",
        data={"username": "person@example.com", "password": secret_password + "-wrong", "csrf_token": token},
    )
    assert failed.status_code == 400
    succeeded = await client.post(
        "/login",
        params={"code": "query-code-abc123"},
        data={"username": "person@example.com", "password": secret_password, "csrf_token": token},
        headers={"x-request-id": "trace-42"},
    )
    assert succeeded.status_code == 303
    cookie = client.cookies["idp_session"]
    csrf_seed = client.cookies["idp_csrf"]
    assert (await client.get("/account", headers={"authorization": "Bearer admin-token-xyz"})).status_code == 200

    records = captured_logs.records()  # raises if any line is not JSON
    assert records
    for record in records:
        assert record.get("request_id"), record
        assert {"time", "level", "logger", "message"} <= record.keys()
    access = [r for r in records if r["logger"] == "idp.access"]
    assert [(r["method"], r["route"], r["status"]) for r in access if r["path"] == "/login"] == [
        ("GET", "/login", 200),
        ("POST", "/login", 400),
        ("POST", "/login", 303),
    ]
    assert all(r["client_ip"] == "198.51.100.7" for r in access)
    assert all(isinstance(r["duration_ms"], float | int) for r in access)
    assert "trace-42" in [r["request_id"] for r in access]
    assert succeeded.headers["x-request-id"] == "trace-42"
    assert failed.headers["x-request-id"] != "trace-42"
    assert any(r["message"] == "sign-in failed" for r in records)

    output = "\n".join(captured_logs.lines)
    for secret in [secret_password, cookie, csrf_seed, token, "query-code-abc123", "admin-token-xyz"]:
        assert secret not in output, f"{secret!r} leaked into the logs"


async def test_a_bad_incoming_request_id_is_replaced(client: httpx.AsyncClient, captured_logs: Captured) -> None:
    incoming = ("bad id\u00e6 with spaces" + "x" * 100).encode("latin-1")
    response = await client.get("/healthz", headers={"x-request-id": incoming})
    request_id = response.headers["x-request-id"]
    assert len(request_id) == 32
    assert request_id.isalnum()
    assert captured_logs.records()[-1]["request_id"] == request_id


def test_json_formatter_redacts_message_and_extras() -> None:
    record = logging.makeLogRecord(
        {
            "name": "idp.test",
            "levelno": logging.INFO,
            "levelname": "INFO",
            "msg": "form was %s",
            "args": ("username=a@example.com&password=hunter2",),
        }
    )
    record.detail = "client_secret=s3cr3t"
    record.count = 3
    token = request_id_var.set("rid-1")
    try:
        line = JsonFormatter().format(record)
    finally:
        request_id_var.reset(token)
    entry = json.loads(line)
    assert entry["message"] == "form was username=a@example.com&password=[redacted]"
    assert entry["detail"] == "client_secret=[redacted]"
    assert entry["count"] == 3
    assert entry["request_id"] == "rid-1"
    assert "hunter2" not in line
    assert "s3cr3t" not in line


def test_json_formatter_redacts_exceptions() -> None:
    try:
        raise ValueError("bad token=abc.def.ghi")
    except ValueError:
        import sys

        record = logging.makeLogRecord(
            {"name": "idp.test", "levelname": "ERROR", "msg": "boom", "exc_info": sys.exc_info()}
        )
    line = JsonFormatter().format(record)
    assert "abc.def.ghi" not in line
    assert json.loads(line)["exception"].endswith("ValueError: bad token=[redacted]")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("password=hunter2&x=1", "password=[redacted]&x=1"),
        ("username=a&passwd=hunter2", "username=a&passwd=[redacted]"),
        ('{"token": "abc", "ok": 1}', '{"token": "[redacted]", "ok": 1}'),
        ("{'password': 'hunter2'}", "{'password': '[redacted]'}"),
        ("client_secret=s3cr3t;", "client_secret=[redacted];"),
        ("refresh_token=rt1&access_token=at1", "refresh_token=[redacted]&access_token=[redacted]"),
        ("?code=abc&state=1", "?code=[redacted]&state=1"),
        ("csrf_token: 0123abcd", "csrf_token: [redacted]"),
        ("Authorization: Bearer xyz123", "Authorization: [redacted]"),
        ("authorization=Basic dXNlcjpwYXNz", "authorization=[redacted]"),
        ('{"authorization": "Bearer xyz", "a": 1}', '{"authorization": "[redacted]", "a": 1}'),
        ("Cookie: idp_session=abc123; idp_csrf=def456", "Cookie: [redacted]"),
        ("PASSWORD = hunter2", "PASSWORD = [redacted]"),
        ("GET /login 200", "GET /login 200"),
        ("sign-in failed for reason bad_password", "sign-in failed for reason bad_password"),
        ("", ""),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected
