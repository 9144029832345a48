"""Prometheus metrics (prometheus-client): requests and latency by route, sign-in and second-step outcomes,
lockouts, the password queue, the outbox, and the database pools and errors. deploy/grafana and deploy/prometheus
query these names (tests/deploy/test_observability.py holds them to it)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from sqlalchemy import event
from sqlalchemy.engine import Dialect, ExceptionContext
from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import Response

from idp.store.db import Database
from idp.web.request import services

# Methods idp answers, or that clients commonly send; anything else (invented, or 4 KB long) shares one label, so
# an unauthenticated client cannot grow the number of series or the size of /metrics.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"
UNMATCHED_ROUTE = "unmatched"
# Every label value that can occur is created at zero up front: an alert on `increase(...)` cannot see a series'
# first event when the series itself only appears with it.
LOGIN_OUTCOMES = ("success", "failure", "rate_limited", "overloaded", "invalid", "second_step")
SECOND_STEP_FACTORS = ("otp", "backup")
SECOND_STEP_OUTCOMES = ("success", "failure", "rate_limited")
# The scopes of idp.services.ratelimit.Limit; "other" for one added there but not here.
LOCKOUT_SCOPES = ("account", "address", "device", "enrollment", "admin", "other")
# A database error by what it tells the operator: no connection could be made or it broke (connection), a unique or
# foreign key constraint held (integrity; idp expects some, e.g. an email already taken), a statement failed (other).
DATABASE_ERROR_KINDS = ("connection", "integrity", "other")


def method_label(method: str) -> str:
    """The request method as a metric label: itself when known, else `other`."""
    return method if method in KNOWN_METHODS else OTHER_METHOD


class Metrics:
    """One registry per app, so two apps in one process (tests, or embedding) do not collide."""

    def __init__(self, password_queue: Callable[[], float], *, password_queue_limit: int = 0) -> None:
        self.registry = CollectorRegistry()
        # process_cpu_seconds_total, process_resident_memory_bytes, open files: per replica, on the dashboard.
        ProcessCollector(registry=self.registry)
        self.requests = Counter(
            "idp_http_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "idp_http_request_duration_seconds",
            "HTTP request latency by route template",
            ["route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.logins = Counter(
            "idp_login_attempts",
            "Sign-in attempts by outcome (success, failure, rate_limited, overloaded, invalid, second_step)",
            ["outcome"],
            registry=self.registry,
        )
        self.password_queue = Gauge(
            "idp_password_pool_queue_length",
            "Password hash/verify jobs waiting for a worker",
            registry=self.registry,
        )
        self.password_queue.set_function(password_queue)
        self.password_queue_limit = Gauge(
            "idp_password_pool_queue_limit",
            "Password jobs that may wait before sign-ins are refused as overloaded (IDP_PASSWORD_QUEUE)",
            registry=self.registry,
        )
        self.password_queue_limit.set(password_queue_limit)
        self.second_step = Counter(
            "idp_second_step_attempts",
            "Second-step (authenticator or backup code) submissions by factor and outcome",
            ["factor", "outcome"],
            registry=self.registry,
        )
        self.lockouts = Counter(
            "idp_lockouts",
            "Attempts refused because an attempt limit was reached, by the limit's scope",
            ["scope"],
            registry=self.registry,
        )
        self.database_errors = Counter(
            "idp_database_errors",
            "Database statements or connections that failed, by kind (connection, integrity, other)",
            ["pool", "kind"],
            registry=self.registry,
        )
        self._pools = _PoolCollector()
        self.registry.register(self._pools)
        for outcome in LOGIN_OUTCOMES:
            self.logins.labels(outcome)
        for factor in SECOND_STEP_FACTORS:
            for outcome in SECOND_STEP_OUTCOMES:
                self.second_step.labels(factor, outcome)
        for scope in LOCKOUT_SCOPES:
            self.lockouts.labels(scope)
        # The durable outbox, by message kind (a fixed set in code, e.g. backchannel_logout).
        self.outbox_queued = Gauge(
            "idp_outbox_messages_queued",
            "Outbox messages waiting to be delivered (sampled by each replica's worker)",
            ["kind"],
            registry=self.registry,
        )
        self.outbox_sent = Counter(
            "idp_outbox_messages_sent", "Outbox messages delivered", ["kind"], registry=self.registry
        )
        self.outbox_failed = Counter(
            "idp_outbox_delivery_failures", "Outbox delivery tries that failed", ["kind"], registry=self.registry
        )
        self.outbox_given_up = Counter(
            "idp_outbox_messages_given_up",
            "Outbox messages dropped after failing for the whole retry period (audited)",
            ["kind"],
            registry=self.registry,
        )

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method_label(method), str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def lockout(self, scope: str) -> None:
        """Count an attempt refused by a reached attempt limit."""
        self.lockouts.labels(scope if scope in LOCKOUT_SCOPES else "other").inc()

    def outbox_kinds(self, kinds: list[str]) -> None:
        """Create the outbox series of each message kind at zero (see LOGIN_OUTCOMES for why)."""
        for kind in kinds:
            self.outbox_queued.labels(kind)
            self.outbox_sent.labels(kind)
            self.outbox_failed.labels(kind)
            self.outbox_given_up.labels(kind)

    def watch_database(self, pool: str, db: Database) -> None:
        """Export `db`'s connection pool use and count its errors under the label `pool` (`main`, `outbox`)."""
        self._pools.databases[pool] = db
        for kind in DATABASE_ERROR_KINDS:
            self.database_errors.labels(pool, kind)

        def failed(context: ExceptionContext) -> None:
            kind = database_error_kind(context)
            if kind is not None:
                self.database_errors.labels(pool, kind).inc()

        def connecting(dialect: Dialect, _record: object, cargs: Any, cparams: Any) -> Any:
            # A connection that cannot be made never reaches handle_error when the driver raises something other
            # than a DBAPI error (asyncpg: OSError for a refused connection), so it is counted here.
            try:
                return dialect.connect(*cargs, **cparams)
            except Exception:
                self.database_errors.labels(pool, "connection").inc()
                raise

        event.listen(db.engine.sync_engine, "handle_error", failed)
        event.listen(db.engine.sync_engine, "do_connect", connecting)


def database_error_kind(context: ExceptionContext) -> str | None:
    """`connection`, `integrity` or `other` (DATABASE_ERROR_KINDS) for a failed statement or a broken connection;
    None for what is counted elsewhere or is no error of its own."""
    # A failed connect (no connection yet) was counted by `do_connect`; a stale pooled connection found by the
    # pre-ping is replaced at once, and only counts if the new one cannot be made.
    if context.connection is None or context.is_pre_ping:
        return None
    # By when it failed rather than by DBAPI class: sqlite3 raises OperationalError for a syntax error too.
    if context.is_disconnect:
        return "connection"
    if isinstance(context.sqlalchemy_exception, IntegrityError):
        return "integrity"
    return "other"


class _PoolCollector(Collector):
    """Connections of each watched database pool, read at scrape time: in use, idle, and the most it may open."""

    def __init__(self) -> None:
        self.databases: dict[str, Database] = {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        in_use = GaugeMetricFamily(
            "idp_database_pool_connections_in_use", "Connections checked out of the pool", labels=["pool"]
        )
        idle = GaugeMetricFamily("idp_database_pool_connections_idle", "Open connections waiting", labels=["pool"])
        limit = GaugeMetricFamily(
            "idp_database_pool_connections_limit",
            "The most connections the pool opens (pool size plus overflow; 0 when unbounded, as for SQLite)",
            labels=["pool"],
        )
        for name, db in self.databases.items():
            pool: Any = db.engine.sync_engine.pool
            # QueuePool (PostgreSQL) counts; SQLite's pools have no bound and may not count checked-out connections.
            in_use.add_metric([name], float(_call(pool, "checkedout")))
            idle.add_metric([name], float(_call(pool, "checkedin")))
            size = _call(pool, "size")
            limit.add_metric([name], float(size + max(getattr(pool, "_max_overflow", 0), 0)) if size else 0.0)
        yield in_use
        yield idle
        yield limit


def _call(pool: object, name: str) -> int:
    method = getattr(pool, name, None)
    value = method() if callable(method) else 0
    return value if isinstance(value, int) else 0


async def metrics_endpoint(request: Request) -> Response:
    metrics = services(request).metrics
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
