from __future__ import annotations

from pathlib import Path

from msgbus.metrics import Counts, MetricsRegistry
from tests.fixtures.metrics import scrape


def test_registries_are_independent_and_prefixed(tmp_path: Path) -> None:
    a, b = MetricsRegistry("msgbus_a"), MetricsRegistry("msgbus_a")
    a.counter("sent_total", "sent").inc(3)
    b.counter("sent_total", "sent")  # same name, other registry: no clash
    out = tmp_path / "m.prom"
    a.write_textfile(out)
    assert "msgbus_a_sent_total 3.0" in out.read_text()


def test_http_exposition_on_a_free_port() -> None:
    m = MetricsRegistry("msgbus_t")
    m.histogram("latency_seconds", "l").observe(0.002)
    text = scrape(m)
    assert 'msgbus_t_latency_seconds_bucket{le="0.0025"} 1.0' in text


def test_counts_feed_stats_and_prometheus_from_one_number(tmp_path: Path) -> None:
    m = MetricsRegistry("msgbus_c")
    counts = Counts(m, {"stored": "rows written", "acked": "frames acknowledged"})
    counts.add("stored", 5)
    counts.add("acked")
    assert counts.snapshot() == {"stored": 5, "acked": 1}
    out = tmp_path / "m.prom"
    m.write_textfile(out)
    text = out.read_text()
    assert "msgbus_c_stored_total 5.0" in text and "msgbus_c_acked_total 1.0" in text
    assert "# HELP msgbus_c_stored_total rows written" in text
