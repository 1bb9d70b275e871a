"""Prometheus metrics: requests by Action and HTTP status, and request latency by Action.

With several worker processes, ``serve`` sets PROMETHEUS_MULTIPROC_DIR before any worker
imports prometheus_client; each worker then writes its samples to files there and ``/metrics``
(answered by any one worker) sums them, so counts are right across workers.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from vmsres.protocol.spec import ACTIONS

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
# Action names come from clients; anything not ours is counted under one label, so a scanner
# cannot grow the series without bound.
OTHER_ACTION = "other"

REQUESTS = Counter("vmsres_requests", "OpenAPI requests by Action and HTTP status", ("action", "status"))
LATENCY = Histogram(
    "vmsres_request_duration_seconds",
    "OpenAPI request latency by Action",
    ("action",),
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


class RequestMetrics:
    """Label children resolved once per (Action, status) and reused: a request then costs two
    lock-protected float additions and no allocations."""

    def __init__(self) -> None:
        self._counters: dict[tuple[str, int], Counter] = {}
        self._latency: dict[str, Histogram] = {}

    def observe(self, action: str, status: int, seconds: float) -> None:
        if action not in ACTIONS:
            action = OTHER_ACTION
        counter = self._counters.get((action, status))
        if counter is None:
            counter = self._counters[(action, status)] = REQUESTS.labels(action, str(status))
        counter.inc()
        histogram = self._latency.get(action)
        if histogram is None:
            histogram = self._latency[action] = LATENCY.labels(action)
        histogram.observe(seconds)


def exposition() -> bytes:
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest()
