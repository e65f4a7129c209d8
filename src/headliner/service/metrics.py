"""Prometheus metrics: decisions, opens, events, waves and request latency.

Each app gets its own :class:`~prometheus_client.CollectorRegistry`, so
building several apps in one process (tests) never clashes. With
``headliner serve --workers N`` (N > 1) the CLI points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before the workers start;
prometheus_client then writes every worker's values there and ``/metrics``
sums them, whichever worker answers.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

if TYPE_CHECKING:
    from headliner.service.experiments import EventResult

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Latency buckets around the service's aims (p99 <= 50 ms, alert at p95 > 300 ms).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """The service's counters and histograms, registered on a private registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.decisions = Counter(
            "headliner_decisions",
            "Per-send decisions made (replays of an idempotency key excluded).",
            registry=self.registry,
        )
        self.opens = Counter(
            "headliner_opens",
            "Successes of the KPI (opens) recorded for decisions, by result (counted, "
            "duplicate, late).",
            ["result"],
            registry=self.registry,
        )
        self.events = Counter(
            "headliner_events",
            "Events stored for sends (pixel fetches included), by type and machine flag.",
            ["type", "machine"],
            registry=self.registry,
        )
        self.outcomes = Counter(
            "headliner_outcomes",
            "Explicit 0/1 outcomes recorded.",
            ["reward"],
            registry=self.registry,
        )
        self.wave_sends = Counter(
            "headliner_wave_sends",
            "Sends allocated in waves.",
            registry=self.registry,
        )
        self.latency = Histogram(
            "headliner_request_duration_seconds",
            "Request latency by method, route template and status.",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def count_event(self, result: EventResult) -> None:
        """Count a stored event, and the KPI success it recorded, if any."""
        event = result.event
        self.events.labels(event.type, str(event.machine).lower()).inc()
        if result.result is not None:
            self.opens.labels(result.result.value).inc()

    def exposition(self) -> tuple[bytes, str]:
        """The text exposition and its content type (all workers in multi-process mode)."""
        if os.environ.get(MULTIPROC_ENV):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
