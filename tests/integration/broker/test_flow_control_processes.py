"""A full queue and a full disk as users meet them (issue 24): ``msgbus broker serve`` and
``msgbus publish`` as processes, every message counted at a consumer. The disk is a small
tmpfs (the tests run as root).

The full-queue run is also the measurement of the issue, at any size::

    MSGBUS_FLOW_MESSAGES=200000 MSGBUS_FLOW_LIMIT=10000 \\
        pytest tests/integration/broker/test_flow_control_processes.py -k full_queue -s

prints the publisher's and the broker's peak RSS and the broker's logins (CI runs 2,000
messages into a queue of 100).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from msgbus.config import load_config
from msgbus.network.activemq import free_port
from msgbus.stomp.frames import MessageFrame
from msgbus.transport.connection import Connection
from tests.chaos.harness import probe_text
from tests.fixtures.disk import SmallDisk
from tests.fixtures.metrics import fetch_metrics
from tests.fixtures.pipeline import EmbeddedBroker, run_msgbus, wait_until

MESSAGES = int(os.environ.get("MSGBUS_FLOW_MESSAGES", "2000"))
LIMIT = int(os.environ.get("MSGBUS_FLOW_LIMIT", "100"))
_COUNTS = re.compile(r"(\d+) confirmed, (\d+) spooled, (\d+) rejected, (\d+) failed")
_SUMMARY = re.compile(rb"summaryData: (.*)\n")


def _counts(output: str) -> tuple[int, int, int, int]:
    found = _COUNTS.search(output)
    assert found is not None, output
    confirmed, spooled, rejected, failed = (int(g) for g in found.groups())
    return confirmed, spooled, rejected, failed


def _rss_kib(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    found = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(found.group(1)) if found else 0


class Consumer:
    """Takes every message of ``queue`` (client-individual acks), counting summaries."""

    def __init__(self, url: str, queue: str) -> None:
        config = load_config(None, {"connection": {"brokers": [url]}})
        self.conn = Connection(config.connection.brokers[0], config.connection)
        self.conn.connect()
        self.conn.subscribe(queue, id="flow", ack="client-individual")
        self.seen: Counter[bytes] = Counter()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            messages = [f for f in self.conn.receive_many(1000, 0.2) if isinstance(f, MessageFrame)]
            for message in messages:
                found = _SUMMARY.search(message.body)
                assert found is not None, message.body
                self.seen[found.group(1)] += 1
            if messages:
                self.conn.ack(messages)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        self.conn.disconnect()


class Sampler:
    """Peak RSS of processes, sampled every 0.2 s while the block runs."""

    def __init__(self) -> None:
        self.peaks: dict[str, int] = {}

    def watch(self, name: str, pid: int, stop: threading.Event) -> threading.Thread:
        def sample() -> None:
            while not stop.wait(0.2):
                self.peaks[name] = max(self.peaks.get(name, 0), _rss_kib(pid))

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        return thread


@pytest.fixture
def full_queue_broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    config = tmp_path / "broker.yaml"
    config.write_text(f"limits: {{max_queue_depth: {LIMIT}, flow_control_wait: 2}}\n")
    base = tmp_path / "broker"
    base.mkdir()
    metrics_port = free_port()
    broker = EmbeddedBroker(base, config=config, args=["--metrics-port", str(metrics_port)])
    broker.metrics_port = metrics_port  # type: ignore[attr-defined]
    broker.start()
    yield broker
    broker.kill()


def _logins(broker: EmbeddedBroker) -> int:
    text = fetch_metrics(broker.metrics_port)  # type: ignore[attr-defined]
    found = re.search(r"^msgbus_broker_logins_total\{[^}]*\} (\S+)$", text, re.M)
    assert found is not None, text
    return int(float(found.group(1)))


def _msgbus(args: list[str], sampler: Sampler, name: str, env: dict[str, str]) -> tuple[int, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "msgbus", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **env},
    )
    stop = threading.Event()
    thread = sampler.watch(name, proc.pid, stop)
    try:
        output, _ = proc.communicate(timeout=max(120, MESSAGES / 100))
    finally:
        stop.set()
        thread.join()
    return proc.returncode, output


def test_a_full_queue_slows_the_publisher_and_loses_nothing(
    full_queue_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """Items 2 and 3 of issue 24: on main every message past the limit was reported
    "rejected" (and the stored ones among the resent too), with a reconnect per message."""
    broker = full_queue_broker
    queue = f"/queue/flow.{os.getpid()}"
    names = [f"flow #{i}".encode() for i in range(MESSAGES)]
    source = tmp_path / "results.txt"
    source.write_text("".join(probe_text(n.decode(), 20) for n in names))
    spool = tmp_path / "spool"
    env = {"MSGBUS_PUBLISHER__RETRY_FOR": "3"}
    sampler = Sampler()
    broker_stop = threading.Event()
    assert broker.process is not None
    broker_sampling = sampler.watch("broker", broker.process.proc.pid, broker_stop)
    started = time.monotonic()
    publish = ["publish", "--broker", broker.stomp_url, "--spool", str(spool)]
    rc, output = _msgbus([*publish, "--destination", queue, str(source)], sampler, "publish", env)
    published_s = time.monotonic() - started
    confirmed, spooled, rejected, failed = _counts(output)
    logins_after_publish = _logins(broker)
    assert (rejected, failed) == (0, 0), output
    assert confirmed + spooled == MESSAGES and spooled > 0, output
    assert rc == 0, output
    assert "queue full" in output  # why they were spooled
    # Back-off, not a reconnect per message: a handful of attempts within retry_for.
    assert logins_after_publish <= 12, (logins_after_publish, output)

    consumer = Consumer(broker.stomp_url, queue)
    try:
        started = time.monotonic()
        drain = ["spool", "drain", "--broker", broker.stomp_url, "--spool", str(spool)]
        rc, output = _msgbus(drain, sampler, "drain", env)
        assert rc == 0, output
        wait_until(lambda: len(consumer.seen) == MESSAGES, 60 + MESSAGES / 500, "every message")
        drained_s = time.monotonic() - started
    finally:
        consumer.close()
        broker_stop.set()
        broker_sampling.join()
    assert set(consumer.seen) == set(names)
    duplicates = sum(n - 1 for n in consumer.seen.values())
    assert duplicates == 0
    logins = _logins(broker)
    print(
        f"\nflow control: {MESSAGES} messages, limit {LIMIT}: published in {published_s:.1f} s "
        f"({confirmed} confirmed, {spooled} spooled, 0 rejected; {logins_after_publish} "
        f"logins), drained in {drained_s:.1f} s, {logins} logins in all; peak RSS "
        + ", ".join(f"{k} {v / 1024:.0f} MiB" for k, v in sampler.peaks.items())
    )
    assert logins <= logins_after_publish + 12
    # Bounded memory: what waits is in the spool and the broker's queue, not in RAM.
    assert sampler.peaks["publish"] < 400 * 1024 and sampler.peaks["drain"] < 400 * 1024


def test_a_full_disk_holds_messages_back_and_the_broker_recovers_by_itself(
    small_disk: Callable[[int], SmallDisk], tmp_path: Path
) -> None:
    """Item 4 of issue 24: on main the clients read "cannot rollback - no transaction is
    active", the messages were reported rejected, and the broker stayed broken until a
    restart."""
    disk = small_disk(4 << 20)
    base = tmp_path / "broker"
    base.mkdir()
    (base / "data").symlink_to(disk.path)  # the store on the small disk, the log not
    broker = EmbeddedBroker(base)
    broker.start()
    messages = 200
    try:
        assert broker.process is not None
        queue = f"/queue/disk.{os.getpid()}"
        names = [f"disk #{i}" for i in range(messages)]
        source = tmp_path / "results.txt"
        source.write_text("".join(probe_text(n, 200) for n in names))
        spool = tmp_path / "spool"
        disk.fill()
        env = {"MSGBUS_PUBLISHER__RETRY_FOR": "2"}
        publish = ["publish", "--broker", broker.stomp_url, "--spool", str(spool)]
        done = run_msgbus([*publish, "--destination", queue, str(source)], env=env)
        # Held back, not rejected: spooled, with the cause named.
        assert _counts(done.stdout) == (0, messages, 0, 0), done.stdout
        assert done.returncode == 0, done.stdout
        assert "disk full: writing the broker store" in done.stdout, done.stdout
        assert "rollback" not in done.stdout

        disk.free()  # space returns; the broker is not restarted
        drained = run_msgbus(
            ["spool", "drain", "--broker", broker.stomp_url, "--spool", str(spool)],
            env={"MSGBUS_PUBLISHER__RETRY_FOR": "20"},
        )
        assert drained.returncode == 0, drained.stdout
        assert broker.process.running()
        consumer = Consumer(broker.stomp_url, queue)
        try:
            wait_until(lambda: len(consumer.seen) == messages, 60, "every message")
        finally:
            consumer.close()
        assert set(consumer.seen) == {n.encode() for n in names}
        assert all(count == 1 for count in consumer.seen.values())
        log = broker.process.output()
        assert "disk full:" in log and "is written again" in log, log
    finally:
        broker.kill()
