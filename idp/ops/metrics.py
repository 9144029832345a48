"""Prometheus metrics (prometheus-client): requests and latency by route, sign-in outcomes, password queue.

With `idp serve --workers N` (N > 1) the workers share one scrape: `idp serve` points PROMETHEUS_MULTIPROC_DIR at a
fresh directory before the workers start, each worker's counters and histograms are written there, and /metrics
(answered by whichever worker the connection reached) adds up every worker's (prometheus-client's multiprocess
mode). The password queue gauge is then each worker's queue as sampled at its last request, summed over live workers.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

from idp.web.request import services

# Methods idp answers, or that clients commonly send; anything else (invented, or 4 KB long) shares one label, so
# an unauthenticated client cannot grow the number of series or the size of /metrics.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"
UNMATCHED_ROUTE = "unmatched"


def method_label(method: str) -> str:
    """The request method as a metric label: itself when known, else `other`."""
    return method if method in KNOWN_METHODS else OTHER_METHOD


MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_mode() -> bool:
    """Whether this process is one of several workers sharing metrics files (see the module's docstring)."""
    return bool(os.environ.get(MULTIPROC_ENV))


class Metrics:
    """One registry per app, so two apps in one process (tests, or embedding) do not collide."""

    def __init__(self, password_queue: Callable[[], float]) -> None:
        self.multiprocess = multiprocess_mode()
        self._password_queue = password_queue
        # (route, method, status) -> the counter's and the histogram's children: labels() costs more than inc().
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self.registry = CollectorRegistry()
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

    def exposition(self) -> bytes:
        """The text exposition: this process's registry, or every worker's when they share metrics files."""
        if not self.multiprocess:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        # prometheus_client ships this class without annotations.
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)


async def metrics_endpoint(request: Request) -> Response:
    metrics = services(request).metrics
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
