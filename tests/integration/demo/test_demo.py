"""`msgbus demo` end to end: a real subprocess, the embedded broker, SQLite."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

from msgbus.demo import SITES


def test_demo_stores_every_published_result_and_reports_it(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    # Hold the default port so the demo has to find a free one, as on a machine
    # where RabbitMQ's STOMP plugin already listens on 61613.
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        taken = squatter.getsockname()[1]
        run = subprocess.run(
            [sys.executable, "-m", "msgbus", "demo", "--duration", "2", "--db", str(db),
             "--port", str(taken), "--seed", "7"],
            capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False,
        )  # fmt: skip
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert f"127.0.0.1:{taken}" not in out
    with sqlite3.connect(db) as conn:
        stored = conn.execute("select count(*) from probe_results").fetchone()[0]
        distinct = conn.execute("select count(distinct msg_id) from probe_results").fetchone()[0]
        sites = {row[0] for row in conn.execute("select distinct site from probe_results")}
        statuses = {row[0] for row in conn.execute("select distinct status from probe_results")}
    assert stored > 0 and stored == distinct
    assert f"published {stored}, stored {stored}" in out
    assert sites == set(SITES)
    assert "OK" in statuses and statuses - {"OK"}, "the demo shows some failing probes"
    for site in SITES:
        assert site in out
    assert str(db.resolve()) in out.replace("\n", "")
