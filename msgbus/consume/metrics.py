"""The consumer's Prometheus metrics."""

from __future__ import annotations

from msgbus.metrics import LATENCY_BUCKETS, Counts, MetricsRegistry
from msgbus.transport.link import LinkMetrics

__all__ = ["ConsumerMetrics"]

_BATCH_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 50_000, 100_000)
# End-to-end lag spans milliseconds (live) to hours (a consumer catching up on a backlog).
_LAG_BUCKETS = (*LATENCY_BUCKETS, 60, 300, 900, 3600, 14_400, 86_400)


class ConsumerMetrics:
    """Counters and histograms of one consumer (own registry, prefix ``msgbus_consumer``)."""

    def __init__(self, registry: MetricsRegistry | None = None) -> None:
        self.registry = registry or MetricsRegistry("msgbus_consumer")
        r = self.registry
        # One set of numbers for stats() and Prometheus (each exported as <name>_total).
        self.counts = Counts(
            r,
            {
                "received": "MESSAGE frames received",
                "stored": "Messages written to the store (committed)",
                "duplicates": "Messages dropped because their key was already stored",
                "dead_lettered": "Invalid or refused messages written to dead_letters",
                "ignored": "SSM pings (empa-id: ping) acknowledged and not written, as "
                "SSM's receiver ignores them (consume --dirq)",
                "acked": "MESSAGE frames acknowledged after commit",
                "batches": "Batches committed",
                "store_stalls": "Batch writes that outlived store.statement_timeout and had "
                "their connection cut",
                "store_retries": "Batch writes retried because the store was unavailable",
                "reconnects": "Broker connections opened after a loss",
            },
        )
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
        self.link = LinkMetrics(r)
