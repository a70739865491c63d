"""Prometheus metrics in a container with its own registry and name prefix.

Each component builds its metrics on a :class:`MetricsRegistry` instead of the
process-global registry, so several components (or tests) in one process never
collide, and a short-lived CLI run can write its numbers to a node-exporter
textfile instead of serving them.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast

from msgbus.errors import ConfigError

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Metric
    from prometheus_client.registry import Collector

__all__ = ["LATENCY_BUCKETS", "Counts", "Distribution", "Level", "MetricsRegistry"]

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
    """A prefixed set of metrics, e.g. ``msgbus_publisher_sent_total``.

    prometheus_client is imported when a Prometheus object is first needed: a one-shot
    ``msgbus publish`` that neither serves nor writes its metrics, and counts with
    :class:`Counts`, :class:`Distribution` and :class:`Level`, never loads it (with the
    HTTP server modules it brings, ~20 ms of its start-up).
    """

    def __init__(self, prefix: str = "msgbus") -> None:
        self.prefix = prefix
        self._registry: CollectorRegistry | None = None
        self._pending: list[Collector] = []
        self._server: WSGIServer | None = None

    @property
    def registry(self) -> CollectorRegistry:
        """The Prometheus registry, with every collector added so far."""
        if self._registry is None:
            from prometheus_client import CollectorRegistry

            self._registry = CollectorRegistry(auto_describe=True)
            for collector in self._pending:
                self._registry.register(collector)
            self._pending.clear()
        return self._registry

    def add_collector(self, collector: Collector) -> None:
        """Export ``collector``'s metrics, without loading prometheus_client yet."""
        if self._registry is None:
            self._pending.append(collector)
        else:
            self._registry.register(collector)

    def _name(self, name: str) -> str:
        return f"{self.prefix}_{name}"

    def counter(self, name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
        from prometheus_client import Counter

        return Counter(self._name(name), doc, labelnames=labels, registry=self.registry)

    def gauge(self, name: str, doc: str, labels: Sequence[str] = ()) -> Gauge:
        from prometheus_client import Gauge

        return Gauge(self._name(name), doc, labelnames=labels, registry=self.registry)

    def histogram(
        self,
        name: str,
        doc: str,
        labels: Sequence[str] = (),
        buckets: Sequence[float] = LATENCY_BUCKETS,
    ) -> Histogram:
        from prometheus_client import Histogram

        return Histogram(
            self._name(name), doc, labelnames=labels, buckets=buckets, registry=self.registry
        )

    def serve(self, port: int, addr: str = "127.0.0.1") -> int:
        """Expose ``/metrics`` over HTTP; returns the bound port (``port`` may be 0)."""
        from prometheus_client import start_http_server

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
        from prometheus_client import write_to_textfile

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
        registry.add_collector(self)

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._values[name] += n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._values)

    def collect(self) -> Iterator[Metric]:
        """The Prometheus collector protocol: one counter per name."""
        from prometheus_client.core import CounterMetricFamily

        for name, value in self.snapshot().items():
            yield CounterMetricFamily(f"{self._prefix}_{name}", self._docs[name], value=value)


class Distribution:
    """A histogram kept as bucket counts and exported as ``<prefix>_<name>`` with the
    ``_bucket``, ``_count`` and ``_sum`` series of a Prometheus histogram (no ``_created``).
    Safe to observe from any thread."""

    def __init__(
        self,
        registry: MetricsRegistry,
        name: str,
        doc: str,
        buckets: Sequence[float] = LATENCY_BUCKETS,
    ) -> None:
        self._name, self._doc = f"{registry.prefix}_{name}", doc
        self._bounds = sorted(buckets)
        self._counts = [0] * (len(self._bounds) + 1)  # the last: above every bound (+Inf)
        self._sum = 0.0
        self._lock = threading.Lock()
        registry.add_collector(self)

    def observe(self, value: float) -> None:
        # Prometheus buckets are "less than or equal": the first bound >= value.
        index = bisect.bisect_left(self._bounds, value)
        with self._lock:
            self._counts[index] += 1
            self._sum += value

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import HistogramMetricFamily
        from prometheus_client.utils import floatToGoString

        # The label text prometheus_client's own Histogram writes (its helper is untyped).
        le = cast("Callable[[float], str]", floatToGoString)
        with self._lock:
            counts, total = list(self._counts), self._sum
        cumulative, buckets = 0, []
        for bound, count in zip([*self._bounds, float("inf")], counts, strict=True):
            cumulative += count
            buckets.append((le(bound), cumulative))
        yield HistogramMetricFamily(self._name, self._doc, buckets=buckets, sum_value=total)


class Level:
    """A gauge kept as one number, exported as ``<prefix>_<name>``."""

    def __init__(self, registry: MetricsRegistry, name: str, doc: str) -> None:
        self._name, self._doc = f"{registry.prefix}_{name}", doc
        self._value = 0.0
        registry.add_collector(self)

    def set(self, value: float) -> None:
        self._value = value

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        yield GaugeMetricFamily(self._name, self._doc, value=self._value)
