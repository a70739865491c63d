"""End-to-end fault suite: `msgbus publish` -> broker(s) -> `msgbus consume` -> PostgreSQL.

Each scenario injects one fault on one kind of broker and then checks that every message
the publisher reported as confirmed (or spooled) is stored exactly once, every rejected one
was reported, and nothing else arrived. The short version runs in CI; the long one is
``MSGBUS_CHAOS_SCALE=20 pytest -m chaos tests/chaos`` (twenty times the messages).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from msgbus.network.activemq import stomp_answers
from msgbus.network.local import LocalNetwork
from tests.chaos.harness import Pipeline, Target, line_target, pipeline_for
from tests.fixtures.activemq import BrokerFactory
from tests.fixtures.chaos import ChaosRow
from tests.fixtures.disk import SmallDisk
from tests.fixtures.pipeline import EmbeddedBroker, MsgbusProcess, run_msgbus, wait_until
from tests.fixtures.proxy import TcpProxy

pytestmark = [pytest.mark.chaos, pytest.mark.postgres]

SCALE = int(os.environ.get("MSGBUS_CHAOS_SCALE", "1"))
CHUNK = 200 * SCALE
"""Messages per `msgbus publish` run."""


def _unique() -> str:
    return uuid.uuid4().hex[:8]


def _embedded(
    factory: Callable[..., EmbeddedBroker], tmp_path: Path, secured: bool, settings: str
) -> Target:
    config = None
    if secured or settings:
        config = tmp_path / "broker.yaml"
        config.write_text(("users: {probe: s3cret}\n" if secured else "") + settings)
    broker = factory(config=config)
    url = broker.stomp_url.replace("//", "//probe:s3cret@") if secured else broker.stomp_url
    topic = f"/topic/chaos.{_unique()}"
    return Target(
        kind="embedded",
        publish_urls=[url],
        consume_urls=[url],
        publish_destination=topic,
        consume_destination=topic,
        subscription="chaos-store",
        kill_broker=broker.kill,
        restart_broker=broker.start,
        data_dir=broker.base / "data",
    )


def _activemq(factory: BrokerFactory, secured: bool) -> Target:
    broker = factory(authentication=secured)
    topic = f"/topic/chaos.{_unique()}"
    return Target(
        kind="activemq",
        publish_urls=[broker.stomp_url],
        consume_urls=[broker.stomp_url],
        publish_destination=topic,
        consume_destination=topic,
        subscription="chaos-store",
        kill_broker=broker.kill,
        restart_broker=broker.start,
    )


def _activemq_flow(factory: BrokerFactory) -> Target:
    """An ActiveMQ whose queues hold 1 MB in memory (the vm cursor, so persistent
    messages count) and refuse a producer held longer than 2 s: its producer flow
    control as a publisher meets it (ResourceAllocationException)."""
    broker = factory(
        destinations=[{"name": "/queue/chaos.>", "memory_limit_mb": 1, "cursor": "vm"}],
        settings={"flow_control_wait_ms": 2000},
    )
    queue = f"/queue/chaos.{_unique()}"
    return Target(
        kind="activemq",
        publish_urls=[broker.stomp_url],
        consume_urls=[broker.stomp_url],
        publish_destination=queue,
        consume_destination=queue,
        kill_broker=broker.kill,
        restart_broker=broker.start,
    )


def _kill_rabbitmq() -> None:
    subprocess.run(["pkill", "-9", "-f", "beam.smp"], check=False)
    wait_until(lambda: not _port_open(61613), 30, "RabbitMQ to die")


def _start_rabbitmq() -> None:
    subprocess.run(["rabbitmq-server", "-detached"], check=True, timeout=60)
    wait_until(lambda: stomp_answers("127.0.0.1", 61613), 120, "RabbitMQ's STOMP port")


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
        return True
    return False


def _rabbitmq(url: str) -> Target:
    topic = f"/topic/chaos.{_unique()}"
    return Target(
        kind="rabbitmq",
        publish_urls=[url],
        consume_urls=[url],
        publish_destination=topic,
        consume_destination=topic,
        subscription=f"chaos-store-{_unique()}",
        connection={"vhost": "/"},
        env={"MSGBUS_CONNECTION__VHOST": "/"},
        kill_broker=_kill_rabbitmq,
        restart_broker=_start_rabbitmq,
    )


def _line(net: LocalNetwork) -> Target:
    """brokers/line.yaml as shipped: probes publish at a, the store group consumes at c;
    the fault is b, the broker in the middle."""
    return line_target(net, "line", ["a"], "b")


KINDS = ["embedded", "activemq", "rabbitmq"]
"""Single brokers; the ActiveMQ line of three joins them where its middle broker matters."""


@pytest.fixture
def broker_yaml() -> str:
    """Settings of the embedded broker (its YAML), which a scenario may parametrize."""
    return ""


@pytest.fixture(params=[*KINDS, "line"])
def target(request: pytest.FixtureRequest, tmp_path: Path, broker_yaml: str) -> Target:
    """A broker of each kind; parametrized ``(kind, True)`` it requires a login."""
    kind, secured = request.param if isinstance(request.param, tuple) else (request.param, False)
    if kind == "line":
        return _line(request.getfixturevalue("activemq_line"))
    if kind == "embedded":
        factory = request.getfixturevalue("embedded_broker_process")
        return _embedded(factory, tmp_path, secured, broker_yaml)
    if kind == "activemq":
        return _activemq(request.getfixturevalue("activemq_broker_factory"), secured)
    if kind == "activemq-flow":
        return _activemq_flow(request.getfixturevalue("activemq_broker_factory"))
    return _rabbitmq(request.getfixturevalue("rabbitmq_stomp"))


@pytest.fixture
def db_proxy(tcp_proxy: Callable[[int], TcpProxy]) -> TcpProxy:
    """The consumer's way to PostgreSQL, where database faults are injected."""
    return tcp_proxy(5432)


@pytest.fixture
def pipeline(
    request: pytest.FixtureRequest,
    target: Target,
    postgres_url: str,
    db_proxy: TcpProxy,
    tmp_path: Path,
) -> Iterator[Pipeline]:
    # Short database timeouts, so that a stall shows within the test's time.
    timeouts = {"MSGBUS_STORE__CONNECT_TIMEOUT": "2", "MSGBUS_STORE__STATEMENT_TIMEOUT": "3"}
    with pipeline_for(request, target, postgres_url, db_proxy, tmp_path, timeouts) as pipe:
        yield pipe


def _mid_backlog(pipe: Pipeline, backlog: int) -> MsgbusProcess:
    """A consumer that has started on a backlog of ``backlog`` messages kept for its
    durable subscription (made first, so that nothing published is missed)."""
    pipe.start_consumer().stop()
    pipe.publish(backlog)
    consumer = pipe.start_consumer()
    wait_until(lambda: pipe.stored_count() > 0, 60, "the first rows")
    return consumer


def _record(pipe: Pipeline, table: list[ChaosRow]) -> None:
    table.append(pipe.verify())


def test_no_fault(pipeline: Pipeline, chaos_table: list[ChaosRow]) -> None:
    pipeline.start_consumer()
    for _ in range(3):
        run = pipeline.publish(CHUNK)
        assert run.returncode == 0 and run.confirmed == CHUNK, run.output
    pipeline.settle()
    _record(pipeline, chaos_table)


@pytest.mark.parametrize("target", KINDS, indirect=True)
def test_poison_between_valid_messages(pipeline: Pipeline, chaos_table: list[ChaosRow]) -> None:
    """Bodies of a foreign producer that hold no valid message (empty, blank, garbage, an
    empty JSON list) each end as one dead letter; the messages around them are stored."""
    pipeline.start_consumer()
    pipeline.publish(CHUNK)
    pipeline.send_poison([b"", b"\n", b"EOT\n", b"[]", b"garbage: without a metric\nEOT\n"])
    pipeline.publish(CHUNK)
    pipeline.settle()
    _record(pipeline, chaos_table)


def test_consumer_killed_repeatedly(pipeline: Pipeline, chaos_table: list[ChaosRow]) -> None:
    """kill -9 of the consumer, again and again, while probes publish: what it had not
    acked comes again, and insert-ignore keeps one row per message. (Cumulative ACKs,
    the default, here and in every other scenario.)"""
    _killed_repeatedly(pipeline, chaos_table)


@pytest.mark.parametrize("target", KINDS, indirect=True)
def test_consumer_acking_each_killed_repeatedly(
    pipeline: Pipeline, chaos_table: list[ChaosRow]
) -> None:
    """The same with one ACK per message (``consumer.ack: client-individual``)."""
    pipeline.consumer_env["MSGBUS_CONSUMER__ACK"] = "client-individual"
    _killed_repeatedly(pipeline, chaos_table)


def _killed_repeatedly(pipeline: Pipeline, chaos_table: list[ChaosRow]) -> None:
    pipeline.start_consumer().stop()  # the durable subscription now keeps what comes
    publishing = threading.Thread(target=lambda: [pipeline.publish(CHUNK) for _ in range(8)])
    publishing.start()
    kills = mid_stream = 0
    while publishing.is_alive() or kills < 3:
        consumer = pipeline.start_consumer()
        before = pipeline.stored_count()

        def grown(b: int = before) -> bool:
            return pipeline.stored_count() > b

        with contextlib.suppress(AssertionError):  # nothing new to store yet: kill anyway
            wait_until(grown, 5, "rows to grow")
        consumer.kill()
        kills += 1
        mid_stream += pipeline.stored_count() < CHUNK * 8
    publishing.join()
    assert mid_stream, "no kill landed while messages were still to be stored"
    pipeline.recovered()
    pipeline.start_consumer()
    pipeline.settle()
    _record(pipeline, chaos_table)


def test_broker_killed(pipeline: Pipeline, chaos_table: list[ChaosRow]) -> None:
    """kill -9 of the broker while the consumer works through a backlog; a probe run
    while it is down spools; after the restart everything confirmed arrives."""
    target = pipeline.target
    assert target.kill_broker is not None and target.restart_broker is not None
    _mid_backlog(pipeline, CHUNK * 20)
    target.kill_broker()
    stored_at_kill = pipeline.stored_count()
    down = pipeline.publish(CHUNK)
    # A publisher at a broker that is still up gets its messages confirmed there.
    wanted = (CHUNK, 0) if target.publishes_through_faults else (0, CHUNK)
    assert down.returncode == 0 and (down.confirmed, down.spooled) == wanted, down.output
    target.restart_broker()
    pipeline.recovered()
    up = pipeline.publish(CHUNK)  # drains the spool first
    assert up.returncode == 0 and up.confirmed == CHUNK, up.output
    pipeline.settle()
    assert stored_at_kill < len(pipeline.accepted)
    _record(pipeline, chaos_table)


@pytest.mark.parametrize("target", [(k, True) for k in KINDS], indirect=True, ids=KINDS)
def test_wrong_credentials(pipeline: Pipeline, chaos_table: list[ChaosRow]) -> None:
    """A refused login is an error the user sees (non-zero exit naming the cause), the
    messages wait in the spool, `spool status` tells why, and the right login delivers."""
    pipeline.start_consumer()
    good = pipeline.target.publish_urls
    bad = [re.sub(r":[^:@/]+@", ":wrong-password@", url) for url in good]
    refused = pipeline.publish(CHUNK, urls=bad)
    assert refused.returncode != 0, refused.output
    assert refused.spooled == CHUNK, refused.output
    assert re.search(r"login|credentials|passcode|authenticat", refused.output, re.I)
    status = run_msgbus(["spool", "status", "--spool", str(pipeline.spool)])
    assert f"{CHUNK} message" in status.stdout, status.stdout
    assert re.search(r"login|credentials|passcode|authenticat", status.stdout, re.I)
    pipeline.recovered()
    assert "drained" in pipeline.drain_spool(good)
    pipeline.settle()
    _record(pipeline, chaos_table)


@pytest.mark.parametrize("target", ["embedded"], indirect=True)
def test_oversized_message(pipeline: Pipeline, chaos_table: list[ChaosRow]) -> None:
    """A message over the broker's frame limit is rejected with the reason, reported with
    a non-zero exit, and holds up nothing: the rest of its run and the next run arrive."""
    pipeline.start_consumer()
    mixed = pipeline.publish(CHUNK, oversized=[CHUNK // 2])
    assert mixed.returncode != 0, mixed.output
    assert mixed.confirmed == CHUNK - 1, mixed.output
    assert re.search(r"too large|exceeds|limit", mixed.output, re.I), mixed.output
    after = pipeline.publish(CHUNK)
    assert after.returncode == 0 and after.confirmed == CHUNK, after.output
    pipeline.settle()
    _record(pipeline, chaos_table)


@pytest.mark.parametrize("target", ["embedded"], indirect=True)
def test_spool_disk_full(
    pipeline: Pipeline, small_disk: Callable[[int], SmallDisk], chaos_table: list[ChaosRow]
) -> None:
    """The spool's disk fills while the broker is down: `msgbus publish` keeps what fits,
    counts the rest as failed naming the full disk (exit 1, the summary line still
    comes); drains on the still-full disk stop after their first message instead of
    sending the spool again; once space is freed one drain delivers it all. (The spool is
    the broker-independent part: one broker kind is enough.)"""
    target = pipeline.target
    assert target.kill_broker is not None and target.restart_broker is not None
    disk = small_disk(4 * 2**20)
    pipeline.spool = disk.path / "spool"
    pipeline.start_consumer()  # its durable subscription keeps what comes meanwhile
    target.kill_broker()
    disk.fill(room=512 * 1024)
    full = pipeline.publish(CHUNK * 5, may_fail=True)
    assert full.returncode == 1 and full.spooled and full.failed, full.output
    assert "the disk holding the spool" in full.output and "is full" in full.output
    target.restart_broker()
    stuck_drains = 2
    for _ in range(stuck_drains):
        stuck = run_msgbus(
            ["spool", "drain", "--spool", str(pipeline.spool), "--broker", target.publish_urls[0]]
        )
        assert stuck.returncode == 1, stuck.stdout
        assert f"0 drained, {full.spooled} remaining" in stuck.stdout, stuck.stdout
        assert "stopped draining: 1 message(s) a broker took" in stuck.stdout
    disk.free()
    pipeline.recovered()
    assert f"{full.spooled} drained, 0 remaining" in pipeline.drain_spool()
    after = pipeline.publish(CHUNK)
    assert after.returncode == 0 and after.confirmed == CHUNK, after.output
    pipeline.settle()
    row = pipeline.verify()
    assert row.duplicates_dropped <= stuck_drains, row
    chaos_table.append(row)


@pytest.mark.parametrize("target", KINDS, indirect=True)
def test_database_reset(
    pipeline: Pipeline, db_proxy: TcpProxy, chaos_table: list[ChaosRow]
) -> None:
    """Every database connection reset (RST) while batches are being written."""
    _mid_backlog(pipeline, CHUNK * 10)
    for _ in range(3):
        db_proxy.reset()
        time.sleep(0.3)
    pipeline.recovered()
    pipeline.publish(CHUNK)
    pipeline.settle()
    _record(pipeline, chaos_table)


@pytest.mark.parametrize("target", KINDS, indirect=True)
def test_database_stall(
    pipeline: Pipeline, db_proxy: TcpProxy, chaos_table: list[ChaosRow]
) -> None:
    """The path to the database hangs (bytes accepted, never answered) for longer than
    the statement timeout: the consumer says so, cuts the connection, retries, and stores
    everything once the path is back."""
    consumer = _mid_backlog(pipeline, CHUNK * 10)
    db_proxy.stall()
    pipeline.publish(CHUNK)  # a batch to write while the path hangs, however fast the rest
    # Hang until the consumer has noticed (a loaded machine may take a while to get there).
    noticed = "the database may be stalled"
    wait_until(lambda: noticed in consumer.output(), 60, "the consumer to notice the stall")
    time.sleep(2)  # and stays stalled a little longer: retries meet it too
    db_proxy.resume()
    pipeline.recovered()
    pipeline.settle()
    _record(pipeline, chaos_table)


@pytest.mark.parametrize("target", ["embedded"], indirect=True)
def test_input_over_16_mib(pipeline: Pipeline, chaos_table: list[ChaosRow]) -> None:
    """One `msgbus publish` of a 17 MB file (20,000 results): read record by record."""
    pipeline.start_consumer()
    run = pipeline.publish(20_000, details=600)
    assert run.returncode == 0 and run.confirmed == 20_000, run.output
    assert (pipeline.base / "input-20000.txt").stat().st_size > 16 * 2**20
    pipeline.settle(timeout=300)
    _record(pipeline, chaos_table)


@pytest.mark.parametrize("target", ["embedded", "activemq-flow"], indirect=True)
@pytest.mark.parametrize(
    "broker_yaml", [f"limits: {{max_queue_depth: {CHUNK}, flow_control_wait: 2}}\n"], ids=["limit"]
)
def test_full_queue_flow_control(pipeline: Pipeline, chaos_table: list[ChaosRow]) -> None:
    """The store's queue full while the consumer is away (the embedded broker: its
    durable subscription at max_queue_depth; ActiveMQ: a queue at its memory limit):
    the broker holds the publisher back (producer flow control), then refuses it
    transiently; the publisher retries with back-off, spools the rest, rejects nothing;
    the consumer back, a drain delivers everything. (A run is one transaction, and one
    larger than ActiveMQ's limit would never fit: each run here is 0.7 MB of its 1 MB.)"""
    pipeline.start_consumer().stop()  # the durable subscription now keeps what comes
    first = pipeline.publish(CHUNK, details=3000)
    assert first.returncode == 0 and first.confirmed == CHUNK, first.output
    full = pipeline.publish(CHUNK, details=3000)
    assert full.returncode == 0 and full.rejected == 0, full.output
    assert full.spooled == CHUNK, full.output
    assert re.search("queue full|ResourceAllocationException", full.output), full.output
    pipeline.start_consumer()
    pipeline.recovered()
    assert "drained" in pipeline.drain_spool()
    pipeline.settle()
    _record(pipeline, chaos_table)


@pytest.mark.parametrize("target", ["embedded"], indirect=True)
def test_broker_disk_full_and_freed(
    pipeline: Pipeline, small_disk: Callable[[int], SmallDisk], chaos_table: list[ChaosRow]
) -> None:
    """The broker's store on a disk that fills up: persistent messages are refused for
    the time being (spooled, never rejected, the cause named), and once space is freed
    the same broker process takes them again, with no restart."""
    target = pipeline.target
    assert target.kill_broker is not None and target.restart_broker is not None
    assert target.data_dir is not None
    disk = small_disk(8 << 20)
    target.kill_broker()
    shutil.rmtree(target.data_dir)  # nothing kept yet: start again on the small disk
    target.data_dir.symlink_to(disk.path)
    target.restart_broker()
    pipeline.start_consumer()
    pipeline.publish(CHUNK)
    disk.fill()
    full = pipeline.publish(CHUNK)
    assert full.returncode == 0 and (full.confirmed, full.rejected) == (0, 0), full.output
    assert "disk full: " in full.output, full.output
    disk.free()
    pipeline.recovered()
    assert "drained" in pipeline.drain_spool()
    pipeline.publish(CHUNK)
    pipeline.settle()
    _record(pipeline, chaos_table)
