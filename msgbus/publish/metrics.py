"""The publisher's Prometheus metrics."""

from __future__ import annotations

from msgbus.metrics import Counts, Distribution, Level, MetricsRegistry

__all__ = ["PublisherMetrics"]


class PublisherMetrics:
    """Counters and the confirm-latency histogram of one publisher (own registry)."""

    def __init__(self, registry: MetricsRegistry | None = None) -> None:
        self.registry = registry or MetricsRegistry("msgbus_publisher")
        r = self.registry
        # One set of numbers for stats() and Prometheus (each exported as <name>_total).
        self.counts = Counts(
            r,
            {
                "sent": "SEND frames written (re-sends included)",
                "confirmed": "Messages the broker confirmed by receipt",
                "spooled": "Messages written to the local spool",
                "drained": "Spooled messages delivered and removed",
                "failed": "Messages neither delivered nor spooled, or refused by a broker",
                "rejected": "Messages refused by schema validation",
                "reconnects": "Connections opened after a failure",
            },
        )
        # Kept as plain numbers: a one-shot run that exports nothing never loads
        # prometheus_client.
        self.confirm_latency = Distribution(
            r,
            "confirm_latency_seconds",
            "Time from writing a unit (a message, or a transaction of messages) to its receipt",
        )
        self.spool_messages = Level(
            r,
            "spool_messages",
            "Bodies waiting in the spool (a packed body holds several messages)",
        )
