"""`msgbus network render` and how the CLI reports a bad topology (no brokers)."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from click.testing import CliRunner

from msgbus.cli.network_cmd import network

BROKERS = Path(__file__).resolve().parents[3] / "brokers"


def test_render_writes_one_parseable_file_per_broker(tmp_path: Path) -> None:
    args = ["render", str(BROKERS / "line.yaml"), "--out", str(tmp_path)]
    result = CliRunner().invoke(network, args)
    assert result.exit_code == 0, result.output
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("activemq.xml"))
    assert files == ["a/activemq.xml", "b/activemq.xml", "c/activemq.xml"]
    for f in tmp_path.rglob("activemq.xml"):
        ET.parse(f)


def test_render_rabbitmq_writes_node_configs_and_definitions(tmp_path: Path) -> None:
    args = ["render", str(BROKERS / "rabbit3.yaml"), "--out", str(tmp_path)]
    result = CliRunner().invoke(network, args)
    assert result.exit_code == 0, result.output
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.*"))
    assert files == ["definitions.json", *(f"r{i}/rabbitmq.conf" for i in (1, 2, 3))]
    assert "stomp.listeners.tcp.1 = 127.0.0.1:62813" in (tmp_path / "r1/rabbitmq.conf").read_text()
    queues = json.loads((tmp_path / "definitions.json").read_text())["queues"]
    assert queues[0]["arguments"] == {"x-queue-type": "quorum"}


def test_apply_on_a_cluster_not_running_says_to_start_it(tmp_path: Path) -> None:
    args = ["apply", str(BROKERS / "rabbit3.yaml"), "--state-dir", str(tmp_path), "--dry-run"]
    result = CliRunner().invoke(network, args)
    assert result.exit_code != 0
    assert "no node of rabbit3 runs" in str(result.exception)
    assert "msgbus network up" in str(result.exception)


def test_apply_dry_run_on_activemq_shows_the_plan_and_starts_nothing(tmp_path: Path) -> None:
    args = ["apply", str(BROKERS / "line.yaml"), "--state-dir", str(tmp_path), "--dry-run"]
    result = CliRunner().invoke(network, args)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("plan:\n  1. add broker ")
    assert "applied" not in result.output and not list(tmp_path.iterdir())


def test_bench_on_activemq_needs_a_path(tmp_path: Path) -> None:
    args = ["bench", str(BROKERS / "line.yaml"), "--state-dir", str(tmp_path), "--from", "a"]
    result = CliRunner().invoke(network, args)
    assert result.exit_code != 0
    assert "give --from BROKER and --to BROKER" in str(result.exception)


def test_bad_topology_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "security: {authentication: false}\n"
        "brokers: [{name: a, ports: {stomp: 1, openwire: 2}}]\n"
        "links: [{from: a, to: nowhere}]\n"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from msgbus.cli.main import main; main()",
            "network",
            "render",
            str(bad),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("msgbus: error: ")
    assert "unknown broker 'nowhere'" in line


def test_plan_dry_run_on_a_fresh_state_dir_changes_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    result = CliRunner().invoke(
        network, ["apply", str(BROKERS / "line.yaml"), "--state-dir", str(state), "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert "1. add broker a" in result.output
    assert not state.exists()
