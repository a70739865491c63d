"""A full RabbitMQ queue (max-length, overflow reject-publish, as msgbus renders a
destination policy's max_length) refusing `msgbus publish`: RabbitMQ 3.10's STOMP
adapter closes the connection on the nack (no ERROR, no receipt). The messages are
held back and spooled, never rejected nor dropped; retried with back-off, not in a
tight loop; once a consumer drains the queue, the spool drain delivers each message,
stored once."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from msgbus import Publisher
from msgbus.bench.consume import probe_body
from msgbus.config import load_config
from msgbus.errors import BrokerBusy
from msgbus.schema import ProbeResult
from msgbus.schema.stream import read_stream
from tests.fixtures.proxy import TcpProxy
from tests.fixtures.services import require_service
from tests.integration.consume.conftest import ConsumeProcess, count, init_store, wait_until

pytestmark = pytest.mark.rabbitmq

MAX_LENGTH = 20


def _ctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


def _declare(url: str, queue: str, kind: str) -> None:
    """A durable queue of ``kind`` (RabbitMQ declares it on a SUBSCRIBE to /queue/)."""
    from msgbus.transport.connection import Connection

    config = load_config(None, {"connection": {"brokers": [url], "vhost": "/"}})
    conn = Connection(config.connection.brokers[0], config.connection)
    conn.connect()
    try:
        headers = {"durable": "true", "auto-delete": "false", "x-queue-type": kind}
        conn.subscribe(f"/queue/{queue}", id="declare", headers=headers)
        conn.unsubscribe(id="declare")
    finally:
        conn.disconnect()


@pytest.fixture(params=["classic", "quorum"])
def full_queue(rabbitmq_stomp: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A queue refusing publishes beyond MAX_LENGTH messages; removed afterwards."""
    require_service("rabbitmqctl (policies)", lambda: shutil.which("rabbitmqctl"))
    queue = f"msgbus-test-full-{uuid.uuid4().hex[:8]}"
    policy = f"{queue}-limit"
    definition = f'{{"max-length": {MAX_LENGTH}, "overflow": "reject-publish"}}'
    _ctl("set_policy", policy, f"^{queue}$", definition, "--apply-to", "queues")
    try:
        _declare(rabbitmq_stomp, queue, str(request.param))
        yield queue
    finally:
        _ctl("clear_policy", policy)
        _ctl("delete_queue", queue)


def _msgbus(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "msgbus", *args], capture_output=True, text=True, timeout=120
    )


def _inputs(path: Path, n: int) -> Path:
    path.write_bytes(b"\n".join(probe_body(200, i)[0] for i in range(n)))
    return path


def test_full_queue_holds_back_then_every_message_is_stored_once(
    rabbitmq_stomp: str, full_queue: str, tmp_path: Path, sqlite_url: str
) -> None:
    total = 3 * MAX_LENGTH
    config = tmp_path / "msgbus.yaml"
    config.write_text('connection:\n  vhost: "/"\npublisher:\n  retry_for: 3\n')
    common = ["--config", str(config), "--broker", rabbitmq_stomp]
    spool = ["--spool", str(tmp_path / "spool")]
    destination = f"/amq/queue/{full_queue}"

    first = _msgbus("publish", *common, *spool, "--destination", destination,
                    str(_inputs(tmp_path / "in.txt", total)))  # fmt: skip
    assert first.returncode == 0, first.stderr
    # That it retried with back-off, not gave up at once, is counted by the proxy test below.
    held = [line for line in first.stderr.splitlines() if line.startswith("msgbus: held back")]
    assert len(held) == 1 and "max-length" in held[0], first.stderr
    confirmed, spooled = (int(first.stdout.split(word)[0].split()[-1]) for word in
                          (" confirmed", " spooled"))  # fmt: skip
    assert confirmed + spooled == total and spooled > 0

    init_store(sqlite_url)
    consume = ["--destination", destination, "--store", sqlite_url, "--batch", "10"]
    # What the queue took (its limit, quorum queues a little more) goes to the store.
    drained = ConsumeProcess(tmp_path / "drain.log", [*common, *consume, "--drain"])
    assert drained.wait(60) == 0, drained.output()
    assert MAX_LENGTH <= drained.stored() == count(sqlite_url) < total

    # The spool drains while a consumer keeps making room: the queue refuses again and
    # again, the drain holds back and retries until each message went.
    consumer = ConsumeProcess(tmp_path / "consume.log", [*common, *consume])
    try:
        flush = _msgbus("spool", "drain", *common, *spool)
        assert flush.returncode == 0, flush.stderr
        assert flush.stdout.strip().endswith(" drained, 0 remaining"), flush.stdout
        wait_until(lambda: count(sqlite_url) >= total, 60, f"{total} stored messages")
    finally:
        consumer.signal(15)
        consumer.wait()
    # Stored once each: re-sent ones the queue had kept (unconfirmed) were dropped.
    assert count(sqlite_url) == total


def test_repeated_refusal_backs_off(
    rabbitmq_stomp: str, full_queue: str, tmp_path: Path, tcp_proxy: Callable[[int], TcpProxy]
) -> None:
    """Against a queue that stays full, the publisher reconnects with growing waits until
    retry_for passes without progress, then spools: a handful of attempts, not hundreds."""
    proxy = tcp_proxy(61613)
    url = rabbitmq_stomp.replace(":61613", f":{proxy.port}")
    with Path(_inputs(tmp_path / "in.txt", 2 * MAX_LENGTH)).open("rb") as f:
        records = [r for r in read_stream(f, ProbeResult) if r.message is not None]
    destination = f"/amq/queue/{full_queue}"
    with Publisher.from_url(
        url, destination=destination, vhost="/", retry_for=4.0, spool_dir=tmp_path / "spool"
    ) as pub:
        pub.publish_read(records[:MAX_LENGTH])  # fills it (a quorum queue: nearly)
        proxy.accepted.clear()
        report = pub.publish_read(records[MAX_LENGTH:])
    assert isinstance(report.spool_reason, BrokerBusy), report.spool_reason
    assert report.spooled > 0 and report.rejected == [] and report.failed == 0
    gaps = [b - a for a, b in zip(proxy.accepted, proxy.accepted[1:], strict=False)]
    # Back-off from reconnect_initial_delay (0.5 s) doubling: about 4 tries in 4 s.
    assert 3 <= len(proxy.accepted) <= 9, gaps
    assert min(gaps) >= 0.4, gaps
