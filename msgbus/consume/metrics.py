"""The consumer's Prometheus metrics."""

from __future__ import annotations

from msgbus.metrics import LATENCY_BUCKETS, MetricsRegistry

__all__ = ["ConsumerMetrics"]

_BATCH_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 50_000, 100_000)
# End-to-end lag spans milliseconds (live) to hours (a consumer catching up on a backlog).
_LAG_BUCKETS = (*LATENCY_BUCKETS, 60, 300, 900, 3600, 14_400, 86_400)


class ConsumerMetrics:
    """Counters and histograms of one consumer (own registry, prefix ``msgbus_consumer``)."""

    def __init__(self, registry: MetricsRegistry | None = None) -> None:
        self.registry = registry or MetricsRegistry("msgbus_consumer")
        r = self.registry
        self.received = r.counter("received_total", "MESSAGE frames received")
        self.stored = r.counter("stored_total", "Messages written to the store (committed)")
        self.duplicates = r.counter(
            "duplicates_total", "Messages dropped because their key was already stored"
        )
        self.dead_lettered = r.counter(
            "dead_lettered_total", "Invalid or refused messages written to dead_letters"
        )
        self.acked = r.counter("acked_total", "MESSAGE frames acknowledged after commit")
        self.store_stalls = r.counter(
            "store_stalls_total",
            "Batch writes that outlived store.statement_timeout and had their connection cut",
        )
        self.store_retries = r.counter(
            "store_retries_total", "Batch writes retried because the store was unavailable"
        )
        self.reconnects = r.counter("reconnects_total", "Broker connections opened after a loss")
        self.batch_size = r.histogram(
            "batch_size_messages", "MESSAGE frames per committed batch", buckets=_BATCH_BUCKETS
        )
        self.commit_latency = r.histogram(
            "commit_latency_seconds", "Time to write and commit one batch"
        )
        self.lag = r.histogram(
            "lag_seconds", "End-to-end lag: publish timestamp to commit", buckets=_LAG_BUCKETS
        )
        self.paused = r.gauge("paused", "1 while the consumer is paused")
