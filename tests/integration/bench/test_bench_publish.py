"""`msgbus bench publish` against a real ActiveMQ: every sender runs, both ratios print,
and the raw baseline sends what it claims (a unique msgbus-id per message)."""

from __future__ import annotations

import re
import time

from click.testing import CliRunner

from msgbus.bench.raw import RawClient, raw_send
from msgbus.cli.bench_cmd import bench
from msgbus.stomp import serialize
from msgbus.stomp.frames import SubscribeFrame
from tests.fixtures.activemq import ActiveMQ


def test_raw_sender_with_id_header_gives_each_message_its_own_id(activemq: ActiveMQ) -> None:
    queue = f"/queue/bench.ids.{time.time_ns()}"
    with RawClient(activemq.host, activemq.port) as producer:
        raw_send(producer, queue, 150, b"x" * 64, receipts="last", id_header="msgbus-id")
    with RawClient(activemq.host, activemq.port) as producer:
        raw_send(producer, queue, 50, b"y", receipts="each", window=8, id_header="msgbus-id")
    ids: list[str] = []
    with RawClient(activemq.host, activemq.port, timeout=10) as consumer:
        consumer.send_bytes(
            serialize(SubscribeFrame({"destination": queue, "id": "1", "ack": "auto"}))
        )
        while len(ids) < 200:
            ids.extend(f.headers["msgbus-id"] for f in consumer.read() if f.command == "MESSAGE")
    assert len(ids) == 200
    assert len(set(ids)) == 200


def test_bench_publish_reports_every_sender_against_both_baselines(activemq: ActiveMQ) -> None:
    url = f"stomp://{activemq.host}:{activemq.port}"
    result = CliRunner().invoke(
        bench, ["publish", "--broker", url, "--count", "300", "--slow-count", "20", "--rounds", "1"]
    )
    assert result.exit_code == 0, result.output
    rows = {}
    for line in result.output.splitlines():
        match = re.match(
            r"(non-persistent|persistent)\s+(.+?)\s+([\d,]+)\s+([\d.]+)x\s+([\d.]+)x$", line
        )
        if match:
            workload, sender, rate, vs_raw, vs_id = match.groups()
            rows[workload, sender] = (int(rate.replace(",", "")), float(vs_raw), float(vs_id))
    for workload in ("non-persistent", "persistent"):
        assert rows[workload, "raw socket, no receipts"][1] == 1.0
        assert rows[workload, "raw socket + msgbus-id, no receipts"][2] == 1.0
        for confirm in ("transaction", "cumulative", "receipt"):
            rate, vs_raw, _ = rows[workload, f"Publisher, confirm={confirm}"]
            raw_rate = rows[workload, "raw socket, no receipts"][0]
            assert rate > 0 and abs(vs_raw - rate / raw_rate) < 0.01
    assert len(rows) == 14
    # The command users run, as a whole process, against the raw sender of its bodies.
    files = {
        m.group(1): (float(m.group(2).replace(",", "")), float(m.group(3)))
        for m in re.finditer(r"^files\s+(.+?)\s+([\d,]+)\s+([\d.]+)x\s+-$", result.output, re.M)
    }
    assert set(files) == {
        "raw socket, same bodies, no receipts",
        "msgbus publish FILES (whole process)",
        "msgbus publish --pack 100 FILES (whole process)",
    }
    assert files["raw socket, same bodies, no receipts"][1] == 1.0
    assert files["msgbus publish FILES (whole process)"][0] > 0
    # Packed, against a raw sender of the same packed bodies too.
    packed = {
        m.group(1): float(m.group(3))
        for m in re.finditer(
            r"^files, 100 per body\s+(.+?)\s+([\d,]+)\s+([\d.]+)x\s+-$", result.output, re.M
        )
    }
    assert set(packed) == {
        "raw socket, same packed bodies, no receipts",
        "msgbus publish --pack 100 FILES (whole process)",
    }
    assert packed["raw socket, same packed bodies, no receipts"] == 1.0
