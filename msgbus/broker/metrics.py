"""Prometheus view of a running broker, read from its counters at scrape time.

Counting happens in plain integers on the hot path; this collector turns them into
metrics only when scraped, so a message costs no metric-library call.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from msgbus.broker.session import Broker
from msgbus.metrics import MetricsRegistry

__all__ = ["BrokerCollector", "broker_metrics"]


class BrokerCollector(Collector):
    def __init__(self, broker: Broker) -> None:
        self._broker = broker

    def collect(self) -> Iterator[Metric]:
        broker = self._broker
        name = broker.config.name
        connections = GaugeMetricFamily(
            "msgbus_broker_connections", "Open client connections", labels=["broker"]
        )
        connections.add_metric([name], broker.gate.connections)
        yield connections
        logins = CounterMetricFamily(
            "msgbus_broker_logins", "Client logins since start", labels=["broker"]
        )
        logins.add_metric([name], broker.gate.logins)
        yield logins
        received = CounterMetricFamily(
            "msgbus_broker_messages_in", "Messages received from producers", labels=["broker"]
        )
        received.add_metric([name], broker.router.received)
        yield received
        delivered = CounterMetricFamily(
            "msgbus_broker_messages_out", "Messages delivered to consumers", labels=["broker"]
        )
        delivered.add_metric([name], broker.router.delivered)
        yield delivered
        commits = CounterMetricFamily(
            "msgbus_broker_store_commits", "Store transactions (group commits)", labels=["broker"]
        )
        commits.add_metric([name], broker.store.commits)
        yield commits
        depth = GaugeMetricFamily(
            "msgbus_broker_queue_depth",
            "Messages waiting or unacknowledged, per queue",
            labels=["broker", "queue"],
        )
        for queue, value in broker.router.depths().items():
            depth.add_metric([name, queue], value)
        yield depth


def broker_metrics(broker: Broker) -> MetricsRegistry:
    """A registry of its own (never the global one) holding the broker's metrics."""
    metrics = MetricsRegistry(prefix="msgbus_broker")
    metrics.registry.register(BrokerCollector(broker))
    return metrics
