"""The publisher's Prometheus metrics."""

from __future__ import annotations

from msgbus.metrics import MetricsRegistry

__all__ = ["PublisherMetrics"]


class PublisherMetrics:
    """Counters and the confirm-latency histogram of one publisher (own registry)."""

    def __init__(self, registry: MetricsRegistry | None = None) -> None:
        self.registry = registry or MetricsRegistry("msgbus_publisher")
        r = self.registry
        self.sent = r.counter("sent_total", "SEND frames written (re-sends included)")
        self.confirmed = r.counter("confirmed_total", "Messages the broker confirmed by receipt")
        self.spooled = r.counter("spooled_total", "Messages written to the local spool")
        self.drained = r.counter("drained_total", "Spooled messages delivered and removed")
        self.failed = r.counter(
            "failed_total", "Messages neither delivered nor spooled, or refused by a broker"
        )
        self.rejected = r.counter("rejected_total", "Messages refused by schema validation")
        self.reconnects = r.counter("reconnects_total", "Connections opened after a failure")
        self.confirm_latency = r.histogram(
            "confirm_latency_seconds",
            "Time from writing a unit (a message, or a transaction of messages) to its receipt",
        )
        self.spool_messages = r.gauge("spool_messages", "Messages waiting in the spool")
