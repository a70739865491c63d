"""Reliability of `msgbus consume` on real ActiveMQ and PostgreSQL: a consumer killed
mid-batch, a broker restarted mid-stream, the database cut off, and several processes
sharing a virtual-topic queue. Each ends with rows == distinct messages published."""

from __future__ import annotations

import signal
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from tests.fixtures.activemq import ActiveMQ, BrokerFactory
from tests.fixtures.proxy import TcpProxy
from tests.integration.consume.conftest import (
    ConsumeProcess,
    count,
    distinct_ids,
    init_store,
    probes,
    publish,
    wait_until,
)

pytestmark = pytest.mark.slow

Start = Callable[..., ConsumeProcess]


def _args(url: str, destination: str, store_url: str, *extra: str) -> tuple[str, ...]:
    return (
        "--broker",
        url,
        "--destination",
        destination,
        "--store",
        store_url,
        "--max-wait",
        "0.3",
        *extra,
    )


def _all_stored(store_url: str, expected: int, timeout: float) -> None:
    wait_until(lambda: count(store_url) >= expected, timeout, f"{expected} rows")
    assert count(store_url) == distinct_ids(store_url) == expected


@pytest.mark.parametrize("ack", ["client-individual", "client"])
def test_consumer_killed_mid_batch_loses_and_duplicates_nothing(
    activemq: ActiveMQ, postgres_url: str, consume_process: Start, ack: str
) -> None:
    # With cumulative ACKs too: an ACK that covered frames read but not yet committed
    # would lose them here, as the kill lands while the next batch is being read.
    init_store(postgres_url)
    name = f"kill-{uuid.uuid4().hex[:8]}"
    topic = f"/topic/{name}"
    args = _args(
        activemq.stomp_url, topic, postgres_url, "--subscription", name, "--batch", "200",
        "--ack", ack,
    )  # fmt: skip
    first = consume_process(*args, "--drain")
    assert first.wait(60) == 0, first.output()  # the durable subscription now exists
    # Enough that the kill lands mid-stream: a consumer stores thousands per second.
    publish(activemq.stomp_url, topic, probes(12_000))
    victim = consume_process(*args)
    wait_until(lambda: count(postgres_url) >= 600, 60, "the consumer to be mid-stream")
    victim.kill()  # SIGKILL: a batch may be committed but not acked, or read but not committed
    assert count(postgres_url) < 12_000
    survivor = consume_process(*args, "--drain")
    assert survivor.wait(90) == 0, survivor.output()
    _all_stored(postgres_url, 12_000, 10)


def test_broker_restart_mid_stream(
    activemq_broker_factory: BrokerFactory, postgres_url: str, consume_process: Start
) -> None:
    init_store(postgres_url)
    broker = activemq_broker_factory()
    name = f"restart-{uuid.uuid4().hex[:8]}"
    topic = f"/topic/{name}"
    args = _args(broker.stomp_url, topic, postgres_url, "--subscription", name, "--batch", "100")
    first = consume_process(*args, "--drain")
    assert first.wait(60) == 0, first.output()
    publish(broker.stomp_url, topic, probes(12_000))
    # Short reconnect back-off keeps the test brief; the behaviour is the same.
    consumer = consume_process(*args, env={"MSGBUS_CONNECTION__RECONNECT_MAX_DELAY": "1"})
    wait_until(lambda: count(postgres_url) >= 300, 60, "the consumer to be mid-stream")
    broker.kill()
    assert count(postgres_url) < 12_000
    broker.start()
    publish(broker.stomp_url, topic, probes(500), first_id=12_000)
    _all_stored(postgres_url, 12_500, 90)
    assert consumer.proc.poll() is None, "the consumer must ride out the restart"
    consumer.signal(signal.SIGTERM)
    assert consumer.wait(30) == 0, consumer.output()
    assert "broker connection lost" in consumer.output()


def _consume_behind_proxy(
    activemq: ActiveMQ,
    postgres_url: str,
    consume_process: Start,
    tcp_proxy: Callable[[int], TcpProxy],
    name: str,
    messages: int,
    mid_stream: int,
) -> tuple[TcpProxy, ConsumeProcess, str]:
    """A consumer writing through a TCP proxy to PostgreSQL, stopped ``mid_stream``."""
    init_store(postgres_url)
    proxy = tcp_proxy(5432)
    proxied = sa.make_url(postgres_url).set(port=proxy.port).render_as_string(False)
    queue = f"/queue/{name}-{uuid.uuid4().hex[:8]}"
    publish(activemq.stomp_url, queue, probes(messages))
    consumer = consume_process(*_args(activemq.stomp_url, queue, proxied, "--batch", "100"))
    wait_until(lambda: count(postgres_url) >= mid_stream, 60, "the consumer to be mid-stream")
    return proxy, consumer, queue


def test_database_cut_off_mid_stream_recovers_by_itself(
    activemq: ActiveMQ,
    postgres_url: str,
    consume_process: Start,
    tcp_proxy: Callable[[int], TcpProxy],
) -> None:
    proxy, consumer, _queue = _consume_behind_proxy(
        activemq, postgres_url, consume_process, tcp_proxy, "dbcut", 8000, 300
    )
    proxy.cut()
    before = count(postgres_url)
    assert before < 8000
    threading.Event().wait(4.0)  # the outage lasts this long
    assert count(postgres_url) == before, "nothing can be stored while the database is away"
    proxy.restore()
    _all_stored(postgres_url, 8000, 90)
    consumer.signal(signal.SIGTERM)
    assert consumer.wait(30) == 0, consumer.output()
    assert "unavailable" in consumer.output()


@pytest.mark.parametrize("processes", [2, 4])
def test_virtual_topic_queue_shares_the_work(
    activemq: ActiveMQ, postgres_url: str, consume_process: Start, processes: int
) -> None:
    init_store(postgres_url)
    tag = uuid.uuid4().hex[:8]
    topic = f"/topic/VirtualTopic.probes{tag}"
    queue = f"/queue/Consumer.archive.VirtualTopic.probes{tag}"
    consumers: list[Any] = [
        consume_process(
            *_args(activemq.stomp_url, queue, postgres_url, "--batch", "50", "--name", f"c{i}")
        )
        for i in range(processes)
    ]
    wait_until(
        lambda: all("consuming" in c.output() for c in consumers), 60, "every consumer to subscribe"
    )
    publish(activemq.stomp_url, topic, probes(2000))
    _all_stored(postgres_url, 2000, 90)
    for consumer in consumers:
        consumer.signal(signal.SIGTERM)
    shares = []
    for consumer in consumers:
        assert consumer.wait(30) == 0, consumer.output()
        shares.append(consumer.stored())
    assert sum(shares) == 2000
    assert all(share > 0 for share in shares), f"work not shared: {shares}"


def test_second_sigterm_while_the_database_is_away_stops_without_loss(
    activemq: ActiveMQ,
    postgres_url: str,
    consume_process: Start,
    tcp_proxy: Callable[[int], TcpProxy],
) -> None:
    proxy, consumer, queue = _consume_behind_proxy(
        activemq, postgres_url, consume_process, tcp_proxy, "abort", 5000, 200
    )
    proxy.cut()
    assert count(postgres_url) < 5000
    wait_until(lambda: "unavailable" in consumer.output(), 30, "the consumer to notice")
    consumer.signal(signal.SIGTERM)  # finish the batch in flight: cannot, the store is away
    threading.Event().wait(1.0)
    assert consumer.proc.poll() is None, "a first SIGTERM waits for the store"
    consumer.signal(signal.SIGTERM)  # give up now; unacked messages stay with the broker
    assert consumer.wait(30) == 0, consumer.output()
    proxy.restore()
    rest = consume_process(*_args(activemq.stomp_url, queue, postgres_url, "--drain"))
    assert rest.wait(60) == 0, rest.output()
    _all_stored(postgres_url, 5000, 10)
