"""Prometheus metrics (prometheus-client): requests and latency by route, sign-in and second-step outcomes,
lockouts, the password queue, the outbox, and the database pools and errors. deploy/grafana and deploy/prometheus
query these names (tests/deploy/test_observability.py holds them to it).

With `idp serve --workers N` (N > 1) the workers share one scrape: `idp serve` points PROMETHEUS_MULTIPROC_DIR at a
fresh directory before the workers start, each worker's counters and histograms are written there, and /metrics
(answered by whichever worker the connection reached) adds up every worker's (prometheus-client's multiprocess
mode). The password queue and pool gauges are then each worker's as sampled at its last request, summed over live
workers, and the process_* metrics are left out (they would describe whichever worker answered).
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
    multiprocess,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import event
from sqlalchemy.engine import Dialect, ExceptionContext
from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import Response

from idp.store.db import Database
from idp.store.hot import AsyncpgHotStore
from idp.web.request import services

# Methods idp answers, or that clients commonly send; anything else (invented, or 4 KB long) shares one label, so
# an unauthenticated client cannot grow the number of series or the size of /metrics.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"
UNMATCHED_ROUTE = "unmatched"
# Every label value that can occur is created at zero up front: an alert on `increase(...)` cannot see a series'
# first event when the series itself only appears with it.
LOGIN_OUTCOMES = ("success", "failure", "rate_limited", "overloaded", "invalid", "second_step")
SECOND_STEP_FACTORS = ("otp", "backup", "passkey")
SECOND_STEP_OUTCOMES = ("success", "failure", "rate_limited")
# The scopes of idp.services.ratelimit.Limit; "other" for one added there but not here.
LOCKOUT_SCOPES = ("account", "address", "device", "enrollment", "admin", "other")
# A database error by what it tells the operator: no connection could be made or it broke (connection), a unique or
# foreign key constraint held (integrity; idp expects some, e.g. an email already taken), a statement failed (other).
DATABASE_ERROR_KINDS = ("connection", "integrity", "other")


def method_label(method: str) -> str:
    """The request method as a metric label: itself when known, else `other`."""
    return method if method in KNOWN_METHODS else OTHER_METHOD


MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_mode() -> bool:
    """Whether this process is one of several workers sharing metrics files (see the module's docstring)."""
    return bool(os.environ.get(MULTIPROC_ENV))


class Metrics:
    """One registry per app, so two apps in one process (tests, or embedding) do not collide."""

    def __init__(self, password_queue: Callable[[], float], *, password_queue_limit: int = 0) -> None:
        self.multiprocess = multiprocess_mode()
        self._password_queue = password_queue
        # (route, method, status) -> the counter's and the histogram's children: labels() costs more than inc().
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._databases: dict[str, Database] = {}
        self._hot_pools: dict[str, AsyncpgHotStore] = {}
        self.registry = CollectorRegistry()
        if not self.multiprocess:
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
            multiprocess_mode="livesum",
        )
        if self.multiprocess:
            # A callback is not shared between processes; a dead worker's last sample is dropped at its exit.
            atexit.register(multiprocess.mark_process_dead, os.getpid())
        else:
            self.password_queue.set_function(password_queue)
        # Each worker has its own password pool, so the limits add up like the queues.
        self.password_queue_limit = Gauge(
            "idp_password_pool_queue_limit",
            "Password jobs that may wait before sign-ins are refused as overloaded (IDP_PASSWORD_QUEUE)",
            registry=self.registry,
            multiprocess_mode="livesum",
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
        self.pool_in_use = Gauge(
            "idp_database_pool_connections_in_use",
            "Connections checked out of the pool",
            ["pool"],
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.pool_idle = Gauge(
            "idp_database_pool_connections_idle",
            "Open connections waiting in the pool",
            ["pool"],
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.pool_limit = Gauge(
            "idp_database_pool_connections_limit",
            "The most connections the pool opens (pool size plus overflow; 0 when it has no bound)",
            ["pool"],
            registry=self.registry,
            multiprocess_mode="livesum",
        )
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
            multiprocess_mode="mostrecent",  # every worker samples the same database count
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
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            # Bounded: routes are templates, methods a fixed set (method_label), statuses a few dozen codes.
            children = (self.requests.labels(route, method_label(method), str(status)), self.latency.labels(route))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)
        if self.multiprocess:
            self.password_queue.set(self._password_queue())
            self._sample_pools()

    def exposition(self) -> bytes:
        """The text exposition: this process's registry, or every worker's when they share metrics files."""
        self._sample_pools()
        if not self.multiprocess:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        # prometheus_client ships this class without annotations.
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)

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
        self._databases[pool] = db
        for kind in DATABASE_ERROR_KINDS:
            self.database_errors.labels(pool, kind)
        self._sample_pools()

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

        # The hot statements' own pool of asyncpg connections (PostgreSQL) passes no SQLAlchemy event:
        # it reports by itself.
        hot = db.hot
        if isinstance(hot, AsyncpgHotStore):
            hot_name = "hot" if pool == "main" else f"{pool}-hot"
            self._hot_pools[hot_name] = hot
            for kind in DATABASE_ERROR_KINDS:
                self.database_errors.labels(hot_name, kind)
            hot.on_error = lambda kind: self.database_errors.labels(hot_name, kind).inc()
            self._sample_pools()

    def _sample_pools(self) -> None:
        for name, db in self._databases.items():
            pool: Any = db.engine.sync_engine.pool
            # QueuePool counts; a pool without counts (NullPool, StaticPool) reports 0 for all three.
            self.pool_in_use.labels(name).set(_count(pool, "checkedout"))
            self.pool_idle.labels(name).set(_count(pool, "checkedin"))
            size = _count(pool, "size")
            self.pool_limit.labels(name).set(size + max(getattr(pool, "_max_overflow", 0), 0) if size else 0)
        for name, hot in self._hot_pools.items():
            in_use, idle, limit = hot.pool_counts()
            self.pool_in_use.labels(name).set(in_use)
            self.pool_idle.labels(name).set(idle)
            self.pool_limit.labels(name).set(limit)


def database_error_kind(context: ExceptionContext) -> str | None:
    """`connection`, `integrity` or `other` (DATABASE_ERROR_KINDS) for a failed statement or a broken connection;
    None for what is counted elsewhere or is no error of its own."""
    # A failed connect (no connection yet) was counted by `do_connect`; a stale pooled connection found by a
    # pre-ping is replaced at once, and only counts if the new one cannot be made.
    if context.connection is None or context.is_pre_ping:
        return None
    # By when it failed rather than by DBAPI class: sqlite3 raises OperationalError for a syntax error too.
    if context.is_disconnect:
        return "connection"
    if isinstance(context.sqlalchemy_exception, IntegrityError):
        return "integrity"
    return "other"


def _count(pool: object, name: str) -> int:
    method = getattr(pool, name, None)
    value = method() if callable(method) else 0
    return value if isinstance(value, int) else 0


async def metrics_endpoint(request: Request) -> Response:
    metrics = services(request).metrics
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
