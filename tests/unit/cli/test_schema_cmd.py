"""``msgbus schema``: validate and export, through CliRunner and a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from msgbus.cli.main import cli
from msgbus.errors import SchemaError
from msgbus.schema import MESSAGE_TYPES, schema_text

REPO = Path(__file__).resolve().parents[3]

GOOD = """\
serviceURI: ce01.example.org
hostName: ce01.example.org
serviceFlavour: CE
siteName: EXAMPLE-SITE
metricStatus: WARNING
metricName: org.sam.CE-JobState
summaryData: WARNING - slow
timestamp: 2026-03-01T12:30:00Z
detailsData: took 20 minutes
EOT
"""
BAD = GOOD.replace("metricStatus: WARNING", "metricStatus: SLOW").replace(
    "timestamp: 2026-03-01T12:30:00Z", "timestamp: now"
)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_valid_file(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "ok.txt"
    path.write_text(GOOD + GOOD)
    result = runner.invoke(cli, ["schema", "validate", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output == f"{path}: 2 valid ProbeResult message(s)\n"


def test_invalid_message_lists_each_problem(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(GOOD + BAD)
    result = runner.invoke(cli, ["schema", "validate", str(path)])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"{path}: message 2, line 15, field 'metricStatus': Input should be 'OK', 'WARNING', "
        "'CRITICAL' or 'UNKNOWN', got 'SLOW'",
        f"{path}: message 2, line 18, field 'timestamp': expected UTC time as "
        "YYYY-MM-DDTHH:MM:SSZ (e.g. 2026-01-31T12:00:00Z), got 'now'",
    ]
    assert isinstance(result.exception, SchemaError)
    assert "1 invalid and 1 valid" in str(result.exception)


def test_stdin_json_and_format_option(runner: CliRunner) -> None:
    doc = json.dumps(
        [{"jobId": "j1", "state": "DONE", "timestamp": "2026-01-01T00:00:00Z", "hostName": "ce"}]
    )
    ok = runner.invoke(cli, ["schema", "validate", "-", "--type", "JobStatusEvent"], input=doc)
    assert ok.exit_code == 0, ok.output
    assert ok.output == "-: 1 valid JobStatusEvent message(s)\n"
    # Forced to WLCG text, the same JSON is one junk line.
    forced = runner.invoke(
        cli, ["schema", "validate", "-", "--type", "JobStatusEvent", "--format", "wlcg"], input=doc
    )
    assert forced.exit_code == 1
    assert "-: message 1, line 1: expected 'key: value' or 'EOT'" in forced.output


def test_unsplittable_and_empty_input(runner: CliRunner) -> None:
    bad_json = runner.invoke(cli, ["schema", "validate", "-"], input="[{")
    assert bad_json.exit_code == 1
    assert bad_json.output.startswith("-: line 1: not valid JSON")
    assert "-: cannot be read as ProbeResult messages" in str(bad_json.exception)
    empty = runner.invoke(cli, ["schema", "validate", "-"], input="\n")
    assert empty.exit_code == 1
    assert empty.output.startswith("-: the body holds no message")
    assert "-: cannot be read as ProbeResult messages" in str(empty.exception)


def test_max_bytes(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["schema", "validate", "-", "--max-bytes", "100"], input=GOOD)
    assert result.exit_code == 1
    assert "over the limit of 100 bytes" in result.output


def test_usage_errors(runner: CliRunner, tmp_path: Path) -> None:
    missing = runner.invoke(cli, ["schema", "validate", str(tmp_path / "nope.txt")])
    assert missing.exit_code == 2 and "No such file or directory" in missing.output
    wrong = runner.invoke(cli, ["schema", "validate", "-", "--type", "Nope"], input=GOOD)
    assert wrong.exit_code == 2 and "'Nope' is not one of" in wrong.output


def test_export(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["schema", "export", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for name, model in MESSAGE_TYPES.items():
        assert f"wrote {tmp_path / name}.json" in result.output
        assert (tmp_path / f"{name}.json").read_text() == schema_text(model)


def _msgbus(*args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "msgbus", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_real_process_exit_codes_and_one_line_error() -> None:
    ok = _msgbus("schema", "validate", "-", stdin=GOOD)
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "-: 1 valid ProbeResult message(s)\n", "")
    bad = _msgbus("schema", "validate", "-", stdin=BAD)
    assert bad.returncode == 1
    assert len(bad.stdout.splitlines()) == 2
    assert bad.stderr.startswith("msgbus: error: -: 1 invalid and 0 valid ProbeResult")
    assert "Traceback" not in bad.stderr and len(bad.stderr.splitlines()) == 1
