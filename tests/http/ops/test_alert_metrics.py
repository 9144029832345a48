"""The metrics deploy/prometheus's alerts and deploy/grafana's dashboard need beyond requests and sign-ins:
second-step outcomes, lockouts by scope, database pool use and errors, the password queue's limit, and every
series there from the start at zero (so `increase()` sees the first event)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from idp.clock import FrozenClock
from idp.config import Settings
from idp.errors import Conflict
from idp.ops.metrics import DATABASE_ERROR_KINDS, LOCKOUT_SCOPES, Metrics
from idp.store.db import Database
from tests.conftest import Running
from tests.http.ops.test_ops import UNREACHABLE, metric_value, scrape
from tests.support.mfa import authenticator_added_elsewhere, totp_code
from tests.support.oidc import make_client
from tests.support.pages import PASSWORD, csrf_from, make_user, submit_login

StartApp = Callable[[Settings], Coroutine[Any, Any, Running]]


def value(metrics: Metrics, sample: str) -> float:
    return metric_value(metrics.exposition().decode(), sample)


async def test_every_series_an_alert_counts_on_is_there_at_zero(running: Running) -> None:
    text_ = await scrape(running)
    for scope in LOCKOUT_SCOPES:
        assert metric_value(text_, f'idp_lockouts_total{{scope="{scope}"}}') == 0
    for pool in ("main", "outbox"):
        for kind in DATABASE_ERROR_KINDS:
            assert metric_value(text_, f'idp_database_errors_total{{kind="{kind}",pool="{pool}"}}') == 0
    for name in ("idp_outbox_messages_given_up_total", "idp_outbox_delivery_failures_total"):
        assert metric_value(text_, f'{name}{{kind="backchannel_logout"}}') == 0
    assert metric_value(text_, 'idp_login_attempts_total{outcome="overloaded"}') == 0
    assert metric_value(text_, 'idp_second_step_attempts_total{factor="backup",outcome="failure"}') == 0
    assert metric_value(text_, "idp_password_pool_queue_limit") == running.idp.settings.password_queue
    assert "process_resident_memory_bytes" in text_


async def test_second_step_outcomes_by_factor(running: Running, clock: FrozenClock) -> None:
    person = await make_user(running.idp)
    secret = await authenticator_added_elsewhere(running, person.id, clock.now())
    async with running.client() as browser:
        assert (await submit_login(browser, person.email, PASSWORD)).status_code == 303
        page = await browser.get("/login/verify")
        wrong = await browser.post("/login/verify", data={"code": "000000", "csrf_token": csrf_from(page.text)})
        assert wrong.status_code == 400
        right = await browser.post(
            "/login/verify", data={"code": totp_code(secret, clock.now()), "csrf_token": csrf_from(page.text)}
        )
        assert right.status_code == 303
    metrics = running.idp.metrics
    assert value(metrics, 'idp_second_step_attempts_total{factor="otp",outcome="failure"}') == 1
    assert value(metrics, 'idp_second_step_attempts_total{factor="otp",outcome="success"}') == 1
    assert value(metrics, 'idp_second_step_attempts_total{factor="backup",outcome="success"}') == 0
    # The sign-in counter still sees the whole sign-in: password step, then the code's outcome.
    assert value(metrics, 'idp_login_attempts_total{outcome="second_step"}') == 1
    assert value(metrics, 'idp_login_attempts_total{outcome="success"}') == 1


async def test_a_lockout_is_counted_by_its_scope(start_app: StartApp, make_settings: Callable[..., Settings]) -> None:
    running = await start_app(make_settings(login_max_failures_per_account=2))
    person = await make_user(running.idp)
    async with running.client() as stranger:
        for _ in range(2):
            assert (await submit_login(stranger, person.email, "not the password")).status_code == 400
        assert (await submit_login(stranger, person.email, PASSWORD)).status_code == 429
    metrics = running.idp.metrics
    assert value(metrics, 'idp_lockouts_total{scope="account"}') == 1
    assert value(metrics, 'idp_lockouts_total{scope="address"}') == 0
    assert value(metrics, 'idp_login_attempts_total{outcome="rate_limited"}') == 1


async def test_admin_token_guessing_is_counted_as_an_admin_lockout(
    start_app: StartApp, make_settings: Callable[..., Settings]
) -> None:
    running = await start_app(make_settings(admin_max_failures_per_address=2))
    async with running.client() as guesser:
        answers = [
            (await guesser.get("/admin/api/users", headers={"Authorization": "Bearer wrong-token"})).status_code
            for _ in range(3)
        ]
    assert answers == [401, 401, 429]
    assert value(running.idp.metrics, 'idp_lockouts_total{scope="admin"}') == 1


async def test_database_pool_use_is_read_at_scrape_time(running: Running) -> None:
    metrics, db = running.idp.metrics, running.idp.db
    async with db.transaction() as session:
        await session.execute(text("SELECT 1"))
        assert value(metrics, 'idp_database_pool_connections_in_use{pool="main"}') == 1
    assert value(metrics, 'idp_database_pool_connections_in_use{pool="main"}') == 0
    assert value(metrics, 'idp_database_pool_connections_idle{pool="main"}') >= 1
    limit = value(metrics, 'idp_database_pool_connections_limit{pool="main"}')
    if db.is_sqlite:
        assert limit >= 0
    else:
        # Fixed pools (idp.store.db), no overflow: SQLAlchemy's and the hot statements' share the setting; the
        # outbox worker's pool is 2.
        hot_limit = value(metrics, 'idp_database_pool_connections_limit{pool="hot"}')
        assert limit >= 1
        assert hot_limit >= 1
        assert limit + hot_limit == running.idp.settings.database_pool_size
        assert value(metrics, 'idp_database_pool_connections_limit{pool="outbox"}') == 2
        assert value(metrics, 'idp_database_pool_connections_idle{pool="hot"}') == 0  # opened when first needed
        service = await make_client(running.idp, "Back end", redirect_uris=[], grant_types=["client_credentials"])
        async with running.client() as http:
            answer = await http.post("/token", data={"grant_type": "client_credentials"}, auth=service.basic)
        assert answer.status_code == 200, answer.text
        assert value(metrics, 'idp_database_pool_connections_idle{pool="hot"}') == 1
        assert value(metrics, 'idp_database_pool_connections_in_use{pool="hot"}') == 0


async def test_the_hot_statements_count_their_errors(running: Running, clock: FrozenClock) -> None:
    metrics, hot = running.idp.metrics, running.idp.db.hot
    # PostgreSQL: the hot statements' own asyncpg pool; SQLite: they go through SQLAlchemy's, counted as main.
    pool = "main" if running.idp.db.is_sqlite else "hot"
    row = {
        "token_hash": "a" * 64,
        "kind": "access",
        "grant_id": "g",
        "client_id": "c",
        "user_id": None,
        "scope": "",
        "sid": None,
        "auth_time": None,
        "amr": "",
        "acr": "",
        "created_at": clock.now(),
        "expires_at": clock.now(),
        "used_at": None,
        "revoked_at": None,
        "offline": False,
    }
    await hot.insert_tokens([row])
    with pytest.raises((asyncpg.UniqueViolationError, IntegrityError)):
        await hot.insert_tokens([row])
    assert value(metrics, f'idp_database_errors_total{{kind="integrity",pool="{pool}"}}') == 1
    assert value(metrics, f'idp_database_errors_total{{kind="other",pool="{pool}"}}') == 0


async def test_a_failed_statement_and_a_constraint_are_counted_apart(running: Running) -> None:
    metrics = running.idp.metrics
    with pytest.raises(DBAPIError):
        async with running.idp.db.transaction() as session:
            await session.execute(text("SELECT * FROM no_such_table"))
    assert value(metrics, 'idp_database_errors_total{kind="other",pool="main"}') == 1
    await make_user(running.idp)
    with pytest.raises(Conflict):
        await make_user(running.idp)
    assert value(metrics, 'idp_database_errors_total{kind="integrity",pool="main"}') == 1
    assert value(metrics, 'idp_database_errors_total{kind="connection",pool="main"}') == 0


@pytest.mark.parametrize("unreachable", UNREACHABLE, ids=["postgresql-nothing-listening", "sqlite-missing-directory"])
async def test_a_database_that_does_not_answer_is_a_connection_error(tmp_path: Path, unreachable: str) -> None:
    metrics = Metrics(lambda: 0)
    db = Database(unreachable.format(tmp=tmp_path))
    metrics.watch_database("main", db)
    try:
        # asyncpg's refused connection is an OSError, not wrapped by SQLAlchemy; it still goes through handle_error.
        with pytest.raises((DBAPIError, OSError)):
            await db.ping()
    finally:
        await db.dispose()
    assert value(metrics, 'idp_database_errors_total{kind="connection",pool="main"}') == 1
    assert value(metrics, 'idp_database_errors_total{kind="other",pool="main"}') == 0
