"""Prometheus metrics in a container with its own registry and name prefix.

Each component builds its metrics on a :class:`MetricsRegistry` instead of the
process-global registry, so several components (or tests) in one process never
collide, and a short-lived CLI run can write its numbers to a node-exporter
textfile instead of serving them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Metric,
    start_http_server,
    write_to_textfile,
)
from prometheus_client.core import CounterMetricFamily

from msgbus.errors import ConfigError

__all__ = ["LATENCY_BUCKETS", "Counts", "MetricsRegistry"]

# Seconds: from sub-millisecond receipts to multi-second database stalls.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
)


class MetricsRegistry:
    """A prefixed set of metrics, e.g. ``msgbus_publisher_sent_total``."""

    def __init__(self, prefix: str = "msgbus") -> None:
        self.prefix = prefix
        self.registry = CollectorRegistry(auto_describe=True)
        self._server: WSGIServer | None = None

    def _name(self, name: str) -> str:
        return f"{self.prefix}_{name}"

    def counter(self, name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
        return Counter(self._name(name), doc, labelnames=labels, registry=self.registry)

    def gauge(self, name: str, doc: str, labels: Sequence[str] = ()) -> Gauge:
        return Gauge(self._name(name), doc, labelnames=labels, registry=self.registry)

    def histogram(
        self,
        name: str,
        doc: str,
        labels: Sequence[str] = (),
        buckets: Sequence[float] = LATENCY_BUCKETS,
    ) -> Histogram:
        return Histogram(
            self._name(name), doc, labelnames=labels, buckets=buckets, registry=self.registry
        )

    def serve(self, port: int, addr: str = "127.0.0.1") -> int:
        """Expose ``/metrics`` over HTTP; returns the bound port (``port`` may be 0)."""
        try:
            server, _thread = start_http_server(port, addr=addr, registry=self.registry)
        except OSError as exc:
            raise ConfigError(
                f"cannot serve metrics on {addr}:{port}: {exc.strerror}; choose another "
                "--metrics-port"
            ) from None
        self._server = server
        return int(server.server_port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def write_textfile(self, path: Path) -> None:
        """Write all metrics for node-exporter's textfile collector (atomically)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        write_to_textfile(str(path), self.registry)


class Counts:
    """Named event counters kept once: ``snapshot()`` is what a component's ``stats()``
    shows, and the registry exports the same numbers as ``<prefix>_<name>_total``, so
    the two can never disagree. Safe to add to from any thread."""

    def __init__(self, registry: MetricsRegistry, docs: Mapping[str, str]) -> None:
        self._prefix = registry.prefix
        self._docs = dict(docs)
        self._values = dict.fromkeys(self._docs, 0)
        self._lock = threading.Lock()
        registry.registry.register(self)

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._values[name] += n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._values)

    def collect(self) -> Iterator[Metric]:
        """The Prometheus collector protocol: one counter per name."""
        for name, value in self.snapshot().items():
            yield CounterMetricFamily(f"{self._prefix}_{name}", self._docs[name], value=value)
