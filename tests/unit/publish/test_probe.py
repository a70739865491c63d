"""Running real Nagios plugins (Debian monitoring-plugins) into ProbeResults."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from msgbus.errors import ConfigError
from msgbus.publish.probe import PluginRun, ProbeTarget, default_metric, probe_result, run_plugin
from msgbus.schema import MetricStatus

PLUGINS = Path("/usr/lib/nagios/plugins")
TARGET = ProbeTarget(metric="check_x", host="h.example.org", site="SITE", service_flavour="host")

needs_plugins = pytest.mark.skipif(
    not (PLUGINS / "check_dummy").exists() and os.environ.get("CI", "").lower() != "true",
    reason="Debian monitoring-plugins not installed",
)


@needs_plugins
@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("0", MetricStatus.OK),
        ("1", MetricStatus.WARNING),
        ("2", MetricStatus.CRITICAL),
        ("3", MetricStatus.UNKNOWN),
    ],
)
def test_check_dummy_exit_codes_map_to_statuses(code: str, status: MetricStatus) -> None:
    run = run_plugin([str(PLUGINS / "check_dummy"), code, "some text"], timeout=10)
    assert (run.status, run.exit_code) == (status, int(code))
    result = probe_result(run, TARGET)
    assert result.metricStatus is status
    assert result.summaryData.endswith("some text")


@needs_plugins
def test_check_load_gives_performance_data() -> None:
    run = run_plugin(
        [str(PLUGINS / "check_load"), "-w", "999,999,999", "-c", "999,999,999"], timeout=10
    )
    result = probe_result(run, TARGET)
    assert result.metricStatus is MetricStatus.OK
    assert {p.label for p in result.perfdata} >= {"load1", "load5", "load15"}


def test_exit_codes_above_three_are_unknown() -> None:
    run = run_plugin([sys.executable, "-c", "print('odd'); raise SystemExit(7)"], timeout=10)
    assert (run.status, run.exit_code) == (MetricStatus.UNKNOWN, 7)


def test_a_plugin_that_hangs_is_killed_and_unknown() -> None:
    run = run_plugin([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5)
    assert run.status is MetricStatus.UNKNOWN and run.exit_code is None
    assert "timed out after 0.5 s" in probe_result(run, TARGET).summaryData


def test_long_output_and_multiline_perfdata_are_split() -> None:
    out = "DISK OK - free | /=10MB;;;0;100\nline one\nline two | /home=5MB;;;0;50\n/var=1MB\n"
    result = probe_result(PluginRun(MetricStatus.OK, out, 0), TARGET)
    assert result.summaryData == "DISK OK - free"
    assert result.detailsData == "line one\nline two"
    assert [p.label for p in result.perfdata] == ["/", "/home", "/var"]


def test_unparsable_perfdata_goes_to_the_details_instead_of_losing_the_result() -> None:
    result = probe_result(PluginRun(MetricStatus.WARNING, "WARN | load=abc\n", 1), TARGET)
    assert result.performanceData is None
    assert result.detailsData is not None and "load=abc" in result.detailsData
    assert result.metricStatus is MetricStatus.WARNING


def test_no_output_is_reported_as_nagios_does() -> None:
    result = probe_result(PluginRun(MetricStatus.CRITICAL, "", 2), TARGET)
    assert result.summaryData == "(No output returned from plugin)"


def test_a_missing_plugin_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot run plugin"):
        run_plugin([str(tmp_path / "check_nothing")], timeout=1)


def test_default_metric_is_the_program_name() -> None:
    assert default_metric(["/usr/lib/nagios/plugins/check_tcp", "-p", "80"]) == "check_tcp"
