"""`msgbus consume` and `msgbus db init` through click: one clear error line, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from msgbus.cli.main import cli
from msgbus.store.migrate import head_revision


def test_db_init_creates_then_reports_the_revision(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    runner = CliRunner()
    first = runner.invoke(cli, ["db", "init", "--store", url])
    assert first.exit_code == 0, first.output
    assert first.output.strip() == f"store {url} is at revision {head_revision()}"
    assert runner.invoke(cli, ["db", "init", "--store", url]).exit_code == 0


def test_db_init_prints_sql_for_a_dba() -> None:
    result = CliRunner().invoke(cli, ["db", "init", "--sql", "oracle"])
    assert result.exit_code == 0
    assert "CREATE TABLE probe_results" in result.output
    assert "CLOB" in result.output


def _msgbus(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "msgbus", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_consume_without_tables_says_what_to_run(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'none.db'}"
    result = _msgbus(
        "consume", "--broker", "stomp://127.0.0.1:1", "--destination", "/queue/q", "--store", url
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"msgbus: error: the store {url} has no msgbus tables, this msgbus needs "
        f"{head_revision()}; run `msgbus db init --store {url}`"
    )
    assert "Traceback" not in result.stderr


def test_consume_with_no_broker_is_one_error_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ok.db'}"
    assert _msgbus("db", "init", "--store", url).returncode == 0
    result = _msgbus(
        "consume", "--broker", "stomp://127.0.0.1:1", "--destination", "/queue/q", "--store", url
    )
    assert result.returncode == 1
    assert "msgbus: error: no broker could be reached" in result.stderr
    assert "Traceback" not in result.stderr


def test_consume_rejects_a_bad_destination(tmp_path: Path) -> None:
    result = _msgbus(
        "consume", "--destination", "probes", "--store", f"sqlite:///{tmp_path / 'x.db'}"
    )
    assert result.returncode == 1
    assert "must start with /topic/, /queue/ or (RabbitMQ) /amq/queue/" in result.stderr


def test_consume_allowlist_without_ca_is_one_error_line(tmp_path: Path) -> None:
    result = _msgbus(
        "consume",
        "--destination",
        "/queue/q",
        "--allow-signer",
        "/CN=probe",
        "--store",
        f"sqlite:///{tmp_path / 'x.db'}",
    )
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("msgbus: error: consumer.allowed_signers needs consumer.signer_ca")
    )
