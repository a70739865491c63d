"""The whole backbone as an operator runs it: a broker, a consumer and two publishers.

Every process is a real ``msgbus`` command reading ``msgbus.yaml`` from its working
directory. ``msgbus status`` must list them all, ``msgbus ctl`` must pause and resume
the consumer (which must stop and restart storing), a publisher killed with SIGKILL
must turn ``lost``, and the dashboard must show the published states in Chromium.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from msgbus.network.activemq import free_port, stomp_answers
from msgbus.store import Store, latest_results
from tests.integration.dashboard.browser import COLOURS, chromium_or_skip, grid, read_png

T = TypeVar("T")
TOPIC = "/topic/grid.probe.e2e"
LOST_AFTER = 4.0


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 60) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.3)


@dataclass
class Backbone:
    workdir: Path
    store_url: str
    broker_url: str
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        with (self.workdir / f"{name}.log").open("wb") as log:  # the child keeps its copy
            proc = subprocess.Popen(
                [sys.executable, "-m", "msgbus", *args],
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.procs[name] = proc
        return proc

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "msgbus", *args],
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"msgbus {' '.join(args)} failed: {done.stderr}")
        return done

    def status(self) -> dict[str, dict[str, Any]]:
        state = str(self.workdir / "status.json")
        out = self.run(
            "status", "--json", "--no-broker-stats", "--listen", "2", "--state-file", state
        )
        return {c["name"]: c for c in json.loads(out.stdout)["components"]}

    def stored(self) -> int:
        store = Store(self.store_url)
        try:
            with store.engine.connect() as conn:
                return int(conn.exec_driver_sql("SELECT count(*) FROM probe_results").scalar_one())
        finally:
            store.close()

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _plugin(workdir: Path, name: str, line: str, code: int) -> str:
    path = workdir / name
    path.write_text(f"#!/bin/sh\necho '{line}'\nexit {code}\n")
    path.chmod(0o755)
    return str(path)


@pytest.fixture(scope="module")
def backbone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backbone]:
    workdir = tmp_path_factory.mktemp("backbone")
    port = free_port()
    bb = Backbone(workdir, f"sqlite:///{workdir / 'store.db'}", f"stomp://127.0.0.1:{port}")
    config = {
        "site": "SITE-E2E",
        "connection": {"brokers": [bb.broker_url], "heartbeat_ms": [2000, 2000]},
        "store_url": bb.store_url,
        "consumer": {"destination": TOPIC, "subscription": "e2e", "batch": 10, "max_wait": 0.2},
        "publisher": {"destination": TOPIC, "spool_dir": str(workdir / "spool")},
        "control": {
            "presence_interval": 1.0,
            "lost_after": LOST_AFTER,
            "allowed_users": ["ops"],
            "user": "ops",
            "secrets": {"ops": "e2e-secret"},
        },
    }
    (workdir / "msgbus.yaml").write_text(yaml.safe_dump(config))
    ok = _plugin(workdir, "check_ping", "OK - 0.2 ms", 0)
    bad = _plugin(workdir, "check_disk", "CRITICAL - /data full", 2)
    try:
        bb.start("broker", "broker", "serve", "--port", str(port), "--name", "broker-e2e")
        wait_for("the broker", lambda: stomp_answers("127.0.0.1", port), 60)
        bb.run("db", "init")
        bb.start("consumer", "consume", "--name", "consumer-e2e")
        for name, site, metric, plugin in (
            ("pub-a", "SITE-A", "org.sam.Ping", ok),
            ("pub-b", "SITE-B", "org.sam.Disk", bad),
        ):
            args = ("--every", "1", "--name", name, "--site", site, "--metric", metric)
            bb.start(name, "probe", *args, "--", plugin)
        yield bb
    finally:
        bb.stop()


def test_status_control_and_lost(backbone: Backbone) -> None:
    bb = backbone
    names = {"broker-e2e", "consumer-e2e", "pub-a", "pub-b"}

    def all_running() -> dict[str, dict[str, Any]] | None:
        seen = bb.status()
        running = {n for n, c in seen.items() if c["state"] == "running"}
        return seen if names <= running else None

    seen = wait_for("all four components running in `msgbus status`", all_running, 90)
    assert seen["consumer-e2e"]["kind"] == "consumer"
    assert seen["pub-a"]["kind"] == "publisher" and seen["broker-e2e"]["kind"] == "broker"

    def both_sites() -> bool:
        store = Store(bb.store_url)
        try:
            return {r.site for r in latest_results(store)} >= {"SITE-A", "SITE-B"}
        finally:
            store.close()

    wait_for("results of both publishers in the store", both_sites, 60)

    paused = bb.run("ctl", "consumer-e2e", "pause")
    assert paused.stdout.startswith("consumer-e2e (consumer):")
    frozen = bb.stored()
    time.sleep(4)  # the publishers publish every second meanwhile
    assert bb.stored() == frozen, "a paused consumer stored messages"
    asked = bb.run("status", "consumer-e2e", "--json", "--state-file", str(bb.workdir / "x"))
    assert json.loads(asked.stdout)["source"] == "control"
    assert json.loads(asked.stdout)["info"]["state"] == "paused"
    assert bb.status()["consumer-e2e"]["state"] == "paused"

    bb.run("ctl", "consumer-e2e", "resume")
    wait_for("the resumed consumer to store again", lambda: bb.stored() > frozen, 30)

    asked = bb.run("ctl", "--kind", "publisher", "status", "--json", "--timeout", "3")
    publishers = json.loads(asked.stdout)
    assert sorted(r["name"] for r in publishers) == ["pub-a", "pub-b"]

    victim = bb.procs["pub-b"]
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(10)
    time.sleep(LOST_AFTER + 1)
    after = bb.status()
    assert after["pub-b"]["state"] == "lost", after["pub-b"]
    assert {after[n]["state"] for n in ("broker-e2e", "consumer-e2e", "pub-a")} == {"running"}


@pytest.mark.browser
def test_dashboard_shows_the_published_states(backbone: Backbone, tmp_path: Path) -> None:
    bb = backbone
    chromium = chromium_or_skip(tmp_path)

    def stored_both() -> bool:
        store = Store(bb.store_url)
        try:
            return {r.site for r in latest_results(store)} >= {"SITE-A", "SITE-B"}
        finally:
            store.close()

    wait_for("results of both publishers in the store", stored_both, 90)
    port = free_port()
    bb.start("dashboard", "dashboard", "--port", str(port), "--poll", "0.5")
    url = f"http://127.0.0.1:{port}/"
    wait_for("the dashboard", lambda: "msgbus dashboard on" in bb.log("dashboard"), 30)
    cells = grid(chromium.dump_dom(url)).cells
    assert cells == {("SITE-A", "org.sam.Ping"): "OK", ("SITE-B", "org.sam.Disk"): "CRITICAL"}
    boxes = read_png(chromium.screenshot(url, tmp_path / "backbone.png")).boxes(COLOURS)
    assert boxes["OK"][0] > 1500 and boxes["CRITICAL"][0] > 1500
    assert boxes["WARNING"][0] == 0 and boxes["UNKNOWN"][0] == 0
