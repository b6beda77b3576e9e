"""Prometheus metrics, shared by every worker process.

Workers write to files in a multiprocess directory; the supervising process
serves them all on one HTTP port (prometheus-client's multiprocess mode). The
directory must be set before any metric exists, so metrics are created by
`Metrics()` after `prepare()`, never at import time.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


def prepare() -> Path:
    """A fresh multiprocess directory for this server, exported to every worker."""
    directory = Path(tempfile.mkdtemp(prefix="topicstance-metrics-"))
    os.environ[ENV] = str(directory)
    return directory


def cleanup(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)


def serve(port: int, host: str) -> None:
    """Serve every worker's metrics on http://host:port/metrics (a daemon thread)."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    start_http_server(port, addr=host, registry=registry)


def worker_exited(pid: int) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


class Metrics:
    """The service's metrics; labels are RPC names, status codes and model labels."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        """In prometheus-client's default registry, or in `registry` (a test's own: the
        default one takes each metric name once per process)."""
        from prometheus_client import REGISTRY, Counter, Gauge, Histogram

        registry = registry or REGISTRY
        self.requests = Counter(
            "topicstance_requests_total",
            "RPCs answered, by method and status code",
            ["method", "code"],
            registry=registry,
        )
        self.latency = Histogram(
            "topicstance_request_seconds",
            "Time to answer an RPC, by method",
            ["method"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.sections = Counter(
            "topicstance_sections_total", "Sections classified", registry=registry
        )
        self.topics = Counter(
            "topicstance_predicted_topics_total",
            "Primary topics predicted (for drift)",
            ["topic"],
            registry=registry,
        )
        self.stances = Counter(
            "topicstance_predicted_stances_total",
            "Stances predicted (for drift)",
            ["actor", "stance"],
            registry=registry,
        )
        self.cancelled = Counter(
            "topicstance_cancelled_total",
            "Calls whose work stopped because the client left",
            registry=registry,
        )
        self.model = Gauge(
            "topicstance_model_info",
            "1 for the model version in use",
            ["version"],
            multiprocess_mode="liveall",
            registry=registry,
        )
        self.load_seconds = Gauge(
            "topicstance_model_load_seconds",
            "Seconds the last model load took",
            multiprocess_mode="liveall",
            registry=registry,
        )
        self.reloads = Counter(
            "topicstance_model_reloads_total",
            "Model reloads, by outcome",
            ["outcome"],
            registry=registry,
        )

    def model_loaded(self, version: str, seconds: float, previous: str | None) -> None:
        if previous is not None and previous != version:
            self.model.labels(version=previous).set(0)
        self.model.labels(version=version).set(1)
        self.load_seconds.set(seconds)

    def predicted(self, primaries: Iterable[str], stances: Iterable[tuple[str, str]]) -> None:
        count = 0
        for topic in primaries:
            self.topics.labels(topic=topic).inc()
            count += 1
        for actor, stance in stances:
            self.stances.labels(actor=actor, stance=stance).inc()
        self.sections.inc(count)
