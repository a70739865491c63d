"""`msgbus publish`, `spool status` and `probe` as a user runs them, with no broker up."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

VALID = (
    "serviceURI: h.example.org\nhostName: h.example.org\nserviceFlavour: host\n"
    "siteName: SITE\nmetricStatus: OK\nmetricName: {name}\nsummaryData: fine\n"
    "timestamp: 2026-01-01T00:00:00Z\nEOT\n"
)
INVALID = "hostName: h.example.org\nmetricStatus: SUPERB\nEOT\n"


def _closed_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"stomp://127.0.0.1:{port}"


def _msgbus(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MSGBUS_PUBLISHER__RETRY_FOR": "0"}
    return subprocess.run(
        [sys.executable, "-m", "msgbus", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=env,
        check=False,
    )


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


def test_publish_spools_valid_messages_rejects_the_invalid_one(
    tmp_path: Path, spool_dir: Path
) -> None:
    data = tmp_path / "in.txt"
    data.write_text(VALID.format(name="a") + INVALID + VALID.format(name="b"))
    proc = _msgbus(
        "publish",
        "--broker",
        _closed_url(),
        "--spool",
        str(spool_dir),
        "--metrics-textfile",
        str(tmp_path / "m.prom"),
        str(data),
        cwd=tmp_path,
    )
    assert proc.returncode == 1
    assert proc.stdout.strip() == "0 confirmed, 2 spooled, 1 rejected, 0 failed"
    assert "rejected:" in proc.stderr and "metricStatus" in proc.stderr
    assert "spooled because: no broker could be reached" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "msgbus_publisher_spooled_total 2.0" in (tmp_path / "m.prom").read_text()

    status = _msgbus("spool", "status", "--spool", str(spool_dir), cwd=tmp_path)
    assert status.returncode == 0
    assert "2 message(s)" in status.stdout


def test_publish_reads_stdin_and_exits_zero_when_all_are_spooled(
    tmp_path: Path, spool_dir: Path
) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "msgbus",
            "publish",
            "--broker",
            _closed_url(),
            "--spool",
            str(spool_dir),
            "--format",
            "json",
            "-",
        ],
        input=VALID.format(name="a"),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "MSGBUS_PUBLISHER__RETRY_FOR": "0"},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "0 confirmed, 1 spooled, 0 rejected, 0 failed"


def test_a_wrong_broker_url_is_one_line(tmp_path: Path) -> None:
    proc = _msgbus("publish", "--broker", "http://broker:61613", "-", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("msgbus: error:")
    assert "stomp://" in proc.stderr


def test_probe_runs_the_plugin_and_spools_its_result(tmp_path: Path, spool_dir: Path) -> None:
    proc = _msgbus(
        "probe",
        "--broker",
        _closed_url(),
        "--spool",
        str(spool_dir),
        "--site",
        "SITE",
        "--host",
        "h.example.org",
        "--",
        sys.executable,
        "-c",
        "print('WARNING - disk 91% | used=91%;90;95'); exit(1)",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        f"{Path(sys.executable).name} WARNING: WARNING - disk 91%",
        "0 confirmed, 1 spooled, 0 rejected, 0 failed",
    ]


def test_probe_without_a_site_says_what_to_do(tmp_path: Path) -> None:
    proc = _msgbus("probe", "--broker", _closed_url(), "--", "true", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "msgbus: error: a probe result needs a site: pass --site or set 'site' in the config"
    )


def test_spool_status_of_an_unused_spool(tmp_path: Path, spool_dir: Path) -> None:
    proc = _msgbus("spool", "status", "--spool", str(spool_dir), cwd=tmp_path)
    assert proc.returncode == 0
    assert "empty (never used)" in proc.stdout
