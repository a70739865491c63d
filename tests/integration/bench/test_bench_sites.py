"""`msgbus bench sites`, small: every site connects, every confirmed message reaches the
store through the virtual-topic consumer group, on the embedded broker and on the ActiveMQ
core of brokers/core3.yaml (where sites on core2 and core3 publish, and the store
consumes on core1 only, so their messages cross the bridges)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from click.testing import CliRunner

from msgbus.cli.bench_cmd import bench
from tests.fixtures.activemq import example_data_on_free_ports
from tests.fixtures.services import require_service

SMALL = ["--metrics", "4", "--interval", "1", "--steady", "2", "--burst", "1"]
SMALL += ["--burst-factor", "3", "--heartbeat", "1", "--drain-timeout", "120", "--single", "500"]


def _check(output: str, sites: int) -> None:
    assert f"connections: {sites} of {sites} in" in output, output
    counts = re.search(
        r"sent ([\d,]+), confirmed ([\d,]+), stored ([\d,]+), confirmed but not stored 0; "
        r"unconfirmed 0; sites refused or cut off: 0$",
        output,
        re.M,
    )
    assert counts, output
    sent, confirmed, stored = (int(c.replace(",", "")) for c in counts.groups())
    # 4 metrics/s per site for 2 s, then 12/s for 1 s: about 20 each, all confirmed.
    assert sent >= sites * 16 and sent == confirmed == stored, output
    phases = re.findall(r"^(steady|burst)\s+([\d,]+)\s+([\d,]+)\s", output, re.M)
    assert [(name, offered) for name, offered, _ in phases] == [
        ("steady", f"{sites * 4:,}"),
        ("burst", f"{sites * 12:,}"),
    ], output


def test_sites_on_the_embedded_broker_are_all_stored() -> None:
    result = CliRunner().invoke(bench, ["sites", "--sites", "60", *SMALL])
    assert result.exit_code == 0, result.output
    _check(result.output, 60)
    assert re.search(r"broker memory per idle connection [\d.-]+ KiB", result.output)
    # The burst against one connection's persistent rate, both measured in this run.
    single = re.search(
        r"one connection, persistent, with a receipt each: ([\d,]+) msgs/s", result.output
    )
    ratio = re.search(
        r"confirmed in the burst / one connection's persistent rate: ([\d.]+)$", result.output, re.M
    )
    assert single and ratio, result.output
    burst = re.search(r"^burst\s+[\d,]+\s+[\d,]+\s+([\d,]+)\s", result.output, re.M)
    assert burst, result.output
    rates = (float(burst.group(1).replace(",", "")), float(single.group(1).replace(",", "")))
    assert abs(rates[0] / rates[1] - float(ratio.group(1))) < 0.01, result.output


def test_sites_on_an_activemq_core_of_three_are_all_stored(tmp_path: Path) -> None:
    from msgbus.network.activemq import find_installation

    require_service("ActiveMQ (ACTIVEMQ_HOME or /usr/share/activemq)", find_installation)
    data = example_data_on_free_ports("core3.yaml")
    data["consumer_groups"] = [{"name": "store", "brokers": ["core1"]}]
    topology = tmp_path / "core3.yaml"
    topology.write_text(yaml.safe_dump(data), encoding="utf-8")
    args = ["sites", "--sites", "30", *SMALL, "--topology", str(topology)]
    result = CliRunner().invoke(bench, [*args, "--site-user", "probe", "--store-user", "store"])
    assert result.exit_code == 0, result.output
    assert "ActiveMQ network core3 (3 brokers)" in result.output
    _check(result.output, 30)


def test_burst_0_runs_the_steady_phase_alone() -> None:
    """--burst 0 (allowed by the option) once ended in a ZeroDivisionError traceback."""
    args = ["sites", "--sites", "5", "--metrics", "4", "--interval", "1", "--steady", "1"]
    result = CliRunner().invoke(bench, [*args, "--burst", "0", "--drain-timeout", "60"])
    assert result.exit_code == 0, result.output
    assert ", no burst;" in result.output
    assert re.findall(r"^(steady|burst)\s", result.output, re.M) == ["steady"], result.output
    assert "backlog at the end of the steady phase:" in result.output
