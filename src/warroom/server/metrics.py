"""warroom's own Prometheus metrics, served at /metrics."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ServerMetrics:
    """warroom's own Prometheus metrics (one registry per app, so tests do not collide)."""

    def __init__(self, queue_depth: Callable[[], float]) -> None:
        self.registry = CollectorRegistry()
        gauge = Gauge("warroom_queue_depth", "Investigations waiting", registry=self.registry)
        gauge.set_function(queue_depth)
        self.notifications = Counter(
            "warroom_notifications", "Webhook notifications accepted", registry=self.registry
        )
        self.rejected = Counter(
            "warroom_notifications_rejected", "Payloads refused", ["reason"], registry=self.registry
        )
        self.seconds = Histogram(
            "warroom_investigation_seconds",
            "From claim to stored report",
            buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600),
            registry=self.registry,
        )
        self.finished = Counter(
            "warroom_investigations", "Investigations finished", ["status"], registry=self.registry
        )
        self.source_errors = Counter(
            "warroom_source_errors",
            "Fetches that failed or were incomplete",
            ["source"],
            registry=self.registry,
        )
