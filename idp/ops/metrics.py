"""Prometheus metrics (prometheus-client): requests and latency by route, sign-in outcomes, password queue."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
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


class Metrics:
    """One registry per app, so two apps in one process (tests, or embedding) do not collide."""

    def __init__(self, password_queue: Callable[[], float]) -> None:
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
        )
        self.password_queue.set_function(password_queue)
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


async def metrics_endpoint(request: Request) -> Response:
    metrics = services(request).metrics
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
