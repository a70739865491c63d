from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from msgbus.metrics import Counts, Distribution, Level, MetricsRegistry
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


def _series(path: Path) -> list[str]:
    """Samples and HELP/TYPE lines, without prometheus_client's ``_created`` series."""
    return [line for line in path.read_text().splitlines() if "_created" not in line]


def test_distribution_and_level_export_what_prometheus_histogram_and_gauge_do(
    tmp_path: Path,
) -> None:
    values = [0.0001, 0.0005, 0.0007, 0.003, 0.0025, 1, 2.4, 29.9, 30, 31, 1e6]
    ours, theirs = MetricsRegistry("msgbus_x"), MetricsRegistry("msgbus_x")
    latency, level = Distribution(ours, "lat_seconds", "l"), Level(ours, "depth", "d")
    histogram, gauge = theirs.histogram("lat_seconds", "l"), theirs.gauge("depth", "d")
    for value in values:
        latency.observe(value)
        histogram.observe(value)
    level.set(7)
    gauge.set(7)
    ours.write_textfile(tmp_path / "ours.prom")
    theirs.write_textfile(tmp_path / "theirs.prom")
    assert _series(tmp_path / "ours.prom") == _series(tmp_path / "theirs.prom")
    assert 'msgbus_x_lat_seconds_bucket{le="0.0005"} 2.0' in _series(tmp_path / "ours.prom")


def test_a_registry_that_exports_nothing_does_not_load_prometheus_client() -> None:
    code = (
        "import sys\n"
        "from msgbus.publish.metrics import PublisherMetrics\n"
        "m = PublisherMetrics()\n"
        "m.counts.add('sent'); m.confirm_latency.observe(0.1); m.spool_messages.set(1)\n"
        "assert 'prometheus_client' not in sys.modules, 'loaded'\n"
        "m.registry.registry\n"
        "assert 'prometheus_client' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
