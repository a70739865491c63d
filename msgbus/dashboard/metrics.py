"""The dashboard's Prometheus metrics (own registry, prefix ``msgbus_dashboard``)."""

from __future__ import annotations

from msgbus.metrics import MetricsRegistry

__all__ = ["DashboardMetrics"]


class DashboardMetrics:
    def __init__(self, registry: MetricsRegistry | None = None) -> None:
        self.registry = registry or MetricsRegistry("msgbus_dashboard")
        r = self.registry
        self.requests = r.counter(
            "http_requests_total", "HTTP requests answered, by route and status", ("route", "code")
        )
        self.request_latency = r.histogram(
            "http_request_duration_seconds", "Time to answer a page or API request", ("route",)
        )
        self.streams = r.gauge("event_streams", "Browsers following live updates now")
        self.events = r.counter("events_total", "Result updates pushed to the browsers")
