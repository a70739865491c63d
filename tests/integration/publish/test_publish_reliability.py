"""Reliable publishing against real ActiveMQ brokers: confirmed delivery, broker kill -9,
failover, spooling with no broker, a publisher killed mid-spool-write."""

from __future__ import annotations

import collections
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from msgbus.config import MsgbusConfig, load_config
from msgbus.publish import ID_HEADER, Envelope, Publisher, PublishReport, Spool
from msgbus.schema import ProbeResult, decode_body
from msgbus.stomp.frames import Frame, MessageFrame
from msgbus.transport.connection import Connection
from msgbus.transport.url import BrokerURL
from tests.fixtures.activemq import ActiveMQ, BrokerFactory
from tests.fixtures.results import numbered


def _closed_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"stomp://127.0.0.1:{port}"


def _queue() -> str:
    return f"/queue/test.publish.{uuid.uuid4().hex[:10]}"


def _config(tmp_path: Path, *brokers: str, **publisher: object) -> MsgbusConfig:
    return load_config(
        overrides={
            "connection": {
                "brokers": list(brokers),
                "reconnect_initial_delay": 0.2,
                "reconnect_max_delay": 2,
                "receipt_timeout": 10,
            },
            "publisher": {"spool_dir": tmp_path / "spool", **publisher},
        }
    )


def _consume(url: str, destination: str, *, idle: float = 3.0) -> collections.Counter[str]:
    """msgbus-ids of every message on ``destination`` until nothing came for ``idle`` s."""
    conn = Connection(BrokerURL.model_validate(url))
    conn.connect()
    seen: collections.Counter[str] = collections.Counter()
    try:
        conn.subscribe(destination, id="t", ack="auto", headers={"activemq.prefetchSize": "1000"})
        while frames := conn.receive_many(1000, idle):
            for frame in frames:
                if isinstance(frame, MessageFrame):
                    seen[frame.headers[ID_HEADER]] += 1
    finally:
        conn.disconnect()
    return seen


def _receive_one(url: str, destination: str) -> Frame | None:
    """The first frame a fresh subscription to ``destination`` gets within 10 s."""
    with Connection(BrokerURL.model_validate(url)) as conn:
        conn.subscribe(destination, id="t", ack="auto")
        return conn.receive(10)


@pytest.mark.parametrize("confirm", ["transaction", "receipt"])
def test_every_message_is_confirmed_and_arrives_once(
    activemq: ActiveMQ, tmp_path: Path, confirm: str
) -> None:
    dest = _queue()
    with Publisher(_config(tmp_path, activemq.stomp_url, confirm=confirm)) as pub:
        report = pub.publish([numbered(i) for i in range(300)], destination=dest)
        stats = pub.stats()
    assert (report.confirmed, report.spooled, report.failed, report.rejected) == (300, 0, 0, [])
    assert stats["confirmed"] == 300 and stats["sent"] == 300
    seen = _consume(activemq.stomp_url, dest)
    assert len(seen) == 300 and set(seen.values()) == {1}


def test_bodies_arrive_decodable_with_selector_headers(activemq: ActiveMQ, tmp_path: Path) -> None:
    dest = _queue()
    with Publisher(_config(tmp_path, activemq.stomp_url)) as pub:
        pub.publish([numbered(7)], destination=dest)
    frame = _receive_one(activemq.stomp_url, dest)
    assert isinstance(frame, MessageFrame)
    assert frame.headers["persistent"] == "true"
    assert frame.headers["metricName"] == "m7"
    (decoded,) = decode_body(frame.body, frame.headers)
    assert decoded.message == numbered(7)


@pytest.mark.parametrize("confirm", ["transaction", "cumulative"])
def test_broker_killed_mid_stream_loses_nothing_accepted(
    activemq_broker_factory: BrokerFactory, tmp_path: Path, confirm: str
) -> None:
    broker = activemq_broker_factory("killme")
    dest = _queue()
    envelopes = [Envelope(dest, b"m%d" % i) for i in range(20_000)]
    config = _config(
        tmp_path, broker.stomp_url, retry_for=120, window=2048, batch=512, confirm=confirm
    )
    config = config.model_copy(
        update={"connection": config.connection.model_copy(update={"heartbeat_ms": (500, 500)})}
    )
    reports: list[PublishReport] = []
    with Publisher(config) as pub:
        sender = threading.Thread(target=lambda: reports.append(pub.send(envelopes)))
        sender.start()
        deadline = time.monotonic() + 60
        while pub.stats()["confirmed"] < 2_000 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pub.stats()["confirmed"] >= 2_000, "publisher made no progress"
        broker.kill()
        time.sleep(1)
        broker.start()
        sender.join(timeout=240)
        assert not sender.is_alive()
        (report,) = reports
        assert report.confirmed + report.spooled == len(envelopes)
        if report.spooled:
            assert pub.drain().remaining == 0
        reconnects = pub.stats()["reconnects"]
        assert reconnects >= 1
        # Heart-beats run on the new connection even while this thread keeps busy: the
        # broker would drop a silent client after about a second.
        busy_until = time.monotonic() + 4
        while time.monotonic() < busy_until:
            sum(range(10_000))
        late = Envelope(dest, b"late")
        assert pub.send([late]).confirmed == 1
        assert pub.stats()["reconnects"] == reconnects
        envelopes.append(late)
    seen = _consume(broker.stomp_url, dest)
    accepted = {e.msgbus_id for e in envelopes}
    assert set(seen) == accepted  # every accepted id arrived, nothing foreign
    # Re-sent unconfirmed messages may arrive twice; consumers drop them by msgbus-id.
    duplicates = sum(n - 1 for n in seen.values())
    assert duplicates <= config.publisher.window


def test_failover_skips_a_broker_that_refuses_connections(
    activemq: ActiveMQ, tmp_path: Path
) -> None:
    dest = _queue()
    config = _config(tmp_path, _closed_url(), activemq.stomp_url)
    with Publisher(config) as pub:
        report = pub.send([Envelope(dest, b"%d" % i) for i in range(200)])
        assert pub.broker == str(BrokerURL.model_validate(activemq.stomp_url))
    assert report.confirmed == 200
    assert len(_consume(activemq.stomp_url, dest)) == 200


def test_no_broker_spools_then_drains_nothing_lost_nothing_doubled(
    activemq_broker_factory: BrokerFactory, tmp_path: Path
) -> None:
    broker = activemq_broker_factory("later")
    broker.stop()
    dest = _queue()
    envelopes = [Envelope(dest, b"%d" % i) for i in range(1_000)]
    with Publisher(_config(tmp_path, broker.stomp_url, retry_for=0)) as pub:
        report = pub.send(envelopes)
        assert (report.confirmed, report.spooled) == (0, 1_000)
        broker.start()
        drained = pub.drain()
        assert (drained.drained, drained.remaining, drained.error) == (1_000, 0, None)
        # A later publish sends directly once the spool is empty.
        assert pub.send([Envelope(dest, b"after")]).confirmed == 1
        # A broker restart while idle: the next send notices and reconnects.
        broker.restart()
        assert pub.send([Envelope(dest, b"after restart")]).confirmed == 1
        assert pub.stats()["reconnects"] == 1
    seen = _consume(broker.stomp_url, dest)
    assert len(seen) == 1_002 and set(seen.values()) == {1}
    assert {e.msgbus_id for e in envelopes} <= set(seen)


_SPOOL_WRITER = """
import sys
from pathlib import Path
from msgbus.config import load_config
from msgbus.publish import Envelope, Publisher
config = load_config(overrides={
    "connection": {"brokers": [sys.argv[1]]},
    "publisher": {"spool_dir": sys.argv[2], "retry_for": 0},
})
with Publisher(config) as pub:
    while True:
        batch = [Envelope(sys.argv[3], b"x" * 200) for _ in range(50)]
        report = pub.send(batch)
        assert report.spooled == len(batch), report
        print(" ".join(e.msgbus_id for e in batch), flush=True)
"""


def test_publisher_killed_mid_spool_write_leaves_a_usable_spool(
    activemq: ActiveMQ, tmp_path: Path
) -> None:
    dest = _queue()
    accepted: list[str] = []
    with subprocess.Popen(
        [sys.executable, "-c", _SPOOL_WRITER, _closed_url(), str(tmp_path / "spool"), dest],
        stdout=subprocess.PIPE,
        text=True,
    ) as writer:
        assert writer.stdout is not None
        try:
            while len(accepted) < 2_000:
                line = writer.stdout.readline()
                assert line, "the spool writer died"
                accepted.extend(line.split())
        finally:
            os.kill(writer.pid, signal.SIGKILL)
            writer.wait()
        # Batches it spooled after our last read are fine too; they must be whole.
    with Spool(tmp_path / "spool", 1 << 30) as spool:
        spooled = [m.envelope.msgbus_id for m in spool.peek(1_000_000)]
    assert set(accepted) <= set(spooled)
    assert len(spooled) % 50 == 0  # each batch is one transaction: all or nothing

    with Publisher(_config(tmp_path, activemq.stomp_url)) as pub:
        drained = pub.drain()
    assert (drained.drained, drained.remaining) == (len(spooled), 0)
    seen = _consume(activemq.stomp_url, dest)
    assert set(seen) == set(spooled) and set(seen.values()) == {1}


def test_cli_spool_drain_delivers_with_progress(activemq: ActiveMQ, tmp_path: Path) -> None:
    dest = _queue()
    with Publisher(_config(tmp_path, _closed_url(), retry_for=0)) as pub:
        assert pub.send([Envelope(dest, b"%d" % i) for i in range(120)]).spooled == 120
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "msgbus",
            "spool",
            "drain",
            "--spool",
            str(tmp_path / "spool"),
            "--broker",
            activemq.stomp_url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "120 drained, 0 remaining"
    assert len(_consume(activemq.stomp_url, dest)) == 120


def test_refused_login_is_one_clear_line(
    activemq_broker_factory: BrokerFactory, tmp_path: Path
) -> None:
    broker = activemq_broker_factory("secure", authentication=True)
    url = f"stomp://admin:wrong@{broker.host}:{broker.port}"
    message = (
        "serviceURI: h\nhostName: h\nserviceFlavour: host\nsiteName: S\nmetricStatus: OK\n"
        "metricName: m\nsummaryData: s\ntimestamp: 2026-01-01T00:00:00Z\nEOT\n"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "msgbus",
            "publish",
            "--broker",
            url,
            "--spool",
            str(tmp_path / "spool"),
            "-",
        ],
        input=message,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
        env={**os.environ, "MSGBUS_PUBLISHER__RETRY_FOR": "0"},
    )
    # Kept (spooled), but a refused login is permanent: exit 1, never a quiet retry.
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.strip() == "0 confirmed, 1 spooled, 0 rejected, 0 failed"
    (line,) = proc.stderr.splitlines()
    assert line.startswith("msgbus: spooled because: no broker accepted our credentials")
    assert "refused the login" in line and "check the login" in line


PLUGINS = Path("/usr/lib/nagios/plugins")


def test_probe_publishes_a_real_plugin_result(activemq: ActiveMQ, tmp_path: Path) -> None:
    dest = _queue()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "msgbus",
            "probe",
            "--broker",
            activemq.stomp_url,
            "--destination",
            dest,
            "--spool",
            str(tmp_path / "spool"),
            "--site",
            "SITE",
            "--host",
            "broker.example.org",
            "--metric",
            "org.msgbus.STOMP-Port",
            "--",
            str(PLUGINS / "check_tcp"),
            "-H",
            activemq.host,
            "-p",
            str(activemq.port),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "1 confirmed, 0 spooled, 0 rejected, 0 failed"
    frame = _receive_one(activemq.stomp_url, dest)
    assert isinstance(frame, MessageFrame)
    (decoded,) = decode_body(frame.body, frame.headers)
    result = decoded.message
    assert isinstance(result, ProbeResult)
    assert (result.metricName, result.metricStatus.value, result.siteName) == (
        "org.msgbus.STOMP-Port",
        "OK",
        "SITE",
    )
    assert result.summaryData.startswith("TCP OK")
    assert {p.label for p in result.perfdata} == {"time"}


def test_probe_every_keeps_publishing_until_interrupted(activemq: ActiveMQ, tmp_path: Path) -> None:
    dest = _queue()
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "msgbus",
            "probe",
            "--broker",
            activemq.stomp_url,
            "--destination",
            dest,
            "--spool",
            str(tmp_path / "spool"),
            "--site",
            "SITE",
            "--every",
            "0.5",
            "--",
            str(PLUGINS / "check_dummy"),
            "1",
            "still warm",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    ) as proc:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(6)]
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert sum("1 confirmed" in line for line in lines) == 3
    assert len(_consume(activemq.stomp_url, dest)) >= 3
