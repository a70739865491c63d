"""``msgbus dashboard`` as a process: on a backbone it announces itself and serves metrics."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.request import urlopen

from msgbus.broker import BrokerThread
from msgbus.store import Store


def test_dashboard_on_a_backbone(
    store: Store, embedded_broker: BrokerThread, tmp_path: Path
) -> None:
    prefix = ["--broker", embedded_broker.url]
    proc = subprocess.Popen(
        [sys.executable, "-m", "msgbus", "dashboard", "--store", store.url, *prefix,
         "--destination", "/topic/dash.cli", "--port", "0", "--metrics-port", "0",
         "--name", "dash-cli"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        metrics = re.search(r"metrics on (http://\S+)", "".join(lines))
        page = re.search(r"dashboard on (http://\S+) ", "".join(lines))
        assert metrics and page, lines
        with urlopen(page.group(1) + "api/latest", timeout=10) as r:
            assert len(json.load(r)["cells"]) == 4
        counted = 'msgbus_dashboard_http_requests_total{code="200",route="latest"} 1.0'
        # The server counts a request once its answer is written: poll, do not race it.
        until = time.monotonic() + 5
        while True:
            with urlopen(metrics.group(1), timeout=10) as r:
                text = r.read().decode()
            if counted in text or time.monotonic() > until:
                break
            time.sleep(0.1)
        assert counted in text
        deadline = time.monotonic() + 30
        while True:
            status = subprocess.run(
                [sys.executable, "-m", "msgbus", "status", *prefix, "--json", "--listen", "1",
                 "--no-broker-stats", "--state-file", str(tmp_path / "s.json")],
                capture_output=True, text=True, timeout=60, check=True,
            )  # fmt: skip
            names = {c["name"]: c for c in json.loads(status.stdout)["components"]}
            if "dash-cli" in names or time.monotonic() > deadline:
                break
        assert names["dash-cli"]["kind"] == "dashboard"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0
