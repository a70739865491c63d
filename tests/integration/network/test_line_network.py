"""brokers/line.yaml for real: verify, kill the middle broker, restart it, lose nothing."""

from __future__ import annotations

import time

from msgbus.network.local import LocalNetwork
from msgbus.network.stats import destination_stats
from msgbus.network.verify import remove_durable, verify
from msgbus.stomp.frames import MessageFrame
from msgbus.transport.connection import Connection

TOPIC = "/topic/grid.metrics.line-test"
EVERY_PAIR = {(x, y) for x in "abc" for y in "abc"}


def _durable(net: LocalNetwork, broker: str) -> Connection:
    conn = net.connect(broker, client_id=f"store-{broker}")
    conn.subscribe(TOPIC, id="store", headers={"activemq.subscriptionName": "store"})
    return conn


def _bodies(conn: Connection, count: int, timeout: float) -> list[bytes]:
    out: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(out) < count and time.monotonic() < deadline:
        frame = conn.receive(0.5)
        if isinstance(frame, MessageFrame):
            out.append(frame.body)
    return out


def _all_then_quiet(conn: Connection, count: int, timeout: float) -> list[bytes]:
    """``count`` messages within ``timeout``, then whatever more comes within 3 s: a copy
    delivered twice shows there (waiting out ``timeout`` for it cost CI two minutes)."""
    got = _bodies(conn, count, timeout)
    return got + _bodies(conn, count, 3.0)


def _publish(net: LocalNetwork, broker: str, bodies: list[bytes]) -> None:
    conn = net.connect(broker)
    try:
        for i, body in enumerate(bodies):
            # A receipt every 100 (and for the last): the broker handles a connection's
            # frames in order, so it covers the sends before it.
            receipt = f"p{i}" if i % 100 == 99 or i == len(bodies) - 1 else None
            conn.send(TOPIC, body, {"persistent": "true"}, receipt=receipt)
            if receipt:
                conn.wait_for_receipt(receipt, 30.0)
    finally:
        conn.disconnect()


def test_verify_reports_every_path_of_a_healthy_line(line_network: LocalNetwork) -> None:
    result = verify(line_network, timeout=20.0)
    assert result.expected == EVERY_PAIR
    assert set(result.delivered) == EVERY_PAIR
    assert result.ok


def test_killed_middle_broker_breaks_exactly_its_paths_and_loses_nothing(
    line_network: LocalNetwork,
) -> None:
    net = line_network
    store = _durable(net, "c")
    try:
        # Demand from c's durable subscriber must reach a (through b) before b dies.
        deadline = time.monotonic() + 30
        while not _bodies(store, 1, 0.5):
            assert time.monotonic() < deadline, "c's subscription never reached a"
            _publish(net, "a", [b"warm-up"])
        while _bodies(store, 1, 1.0):
            pass  # drop extra warm-ups

        net.process("b").kill()
        broken = verify(net, timeout=8.0, settle=1.0)
        assert set(broken.delivered) == {("a", "a"), ("c", "c")}
        assert broken.broken == EVERY_PAIR - {("a", "a"), ("c", "c")}
        assert set(broken.down) == {"b"}

        stored = [f"stored-{i}".encode() for i in range(50)]
        _publish(net, "a", stored)  # kept at a for the bridge's durable subscription
        assert _bodies(store, 1, 2.0) == []

        net.process("b").start()
        assert _bodies(store, 50, 60.0) == stored
    finally:
        remove_durable(store, id="store", name="store")
        store.disconnect()
    assert verify(net, timeout=20.0).ok


def test_durable_subscriber_made_while_its_bridge_was_down_gets_everything(
    line_network: LocalNetwork,
) -> None:
    """syncDurableSubs + dynamicallyIncludedDestinations: the case that lost 1000 of 1000."""
    net = line_network
    net.process("b").kill()
    offline = _durable(net, "c")
    offline.disconnect()  # an offline durable subscription, made while c was cut off

    net.process("b").start()
    net.wait_formed()
    sent = [f"m{i}".encode() for i in range(1000)]
    _publish(net, "a", sent)

    store = _durable(net, "c")
    try:
        got = _bodies(store, len(sent), 60.0)
        assert len(got) == len(sent)
        assert got == sent
    finally:
        remove_durable(store, id="store", name="store")
        store.disconnect()


def test_virtual_topic_crosses_the_network_once(line_network: LocalNetwork) -> None:
    net = line_network
    publisher = net.connect("a")

    def publish(prefix: str, count: int) -> list[bytes]:
        bodies = [f"{prefix}{i}".encode() for i in range(count)]
        for i, body in enumerate(bodies):
            publisher.send(
                "/topic/VirtualTopic.grid.metrics",
                body,
                {"persistent": "true"},
                receipt=f"{prefix}{i}",
            )
            publisher.wait_for_receipt(f"{prefix}{i}", 30)
        return bodies

    # c's queue for the group exists from start-up, so its demand already reaches a:
    # messages published before any consumer subscribed wait for it at c.
    early = publish("early", 10)
    consumer = net.connect("c")
    consumer.subscribe("/queue/Consumer.store.VirtualTopic.grid.metrics", id="vt")
    try:
        assert _bodies(consumer, 10, 15.0) == early
        late = publish("v", 100)
        publisher.disconnect()
        got = _all_then_quiet(consumer, 100, 10.0)
        # Bridging the topic and the consumer queues both would deliver each one twice.
        assert got == late
        for broker in "ab":  # no unread copies left where the group does not consume
            conn = net.connect(broker)
            try:
                left = {d.name: d.size for d in destination_stats(conn)}
            finally:
                conn.disconnect()
            assert left.get("queue://Consumer.store.VirtualTopic.grid.metrics", 0) == 0
    finally:
        consumer.disconnect()


VT_TOPIC = "/topic/VirtualTopic.grid.metrics"
VT_QUEUE = "/queue/Consumer.store.VirtualTopic.grid.metrics"


def _publish_confirmed(net: LocalNetwork, broker: str, bodies: list[bytes]) -> None:
    """Each message confirmed by ``broker`` (a receipt each), as the Publisher does."""
    conn = net.connect(broker)
    try:
        for i, body in enumerate(bodies):
            conn.send(VT_TOPIC, body, {"persistent": "true"}, receipt=f"r{i}")
            conn.wait_for_receipt(f"r{i}", 30.0)
    finally:
        conn.disconnect()


def _left_in_consumer_queues(net: LocalNetwork) -> dict[str, int]:
    left = {}
    for broker in "abc":
        conn = net.connect(broker)
        try:
            sizes = {d.name: d.size for d in destination_stats(conn)}
        finally:
            conn.disconnect()
        left[broker] = sizes.get("queue://Consumer.store.VirtualTopic.grid.metrics", 0)
    return left


def test_virtual_topic_messages_confirmed_while_the_middle_broker_is_down_arrive(
    line_network: LocalNetwork,
) -> None:
    """Store and forward: what a confirms while b is dead (consumer at c connected, then
    away) waits at a and reaches c exactly once when b is back; nothing piles up."""
    net = line_network
    consumer = net.connect("c")
    consumer.subscribe(VT_QUEUE, id="vt")
    try:
        net.process("b").kill()
        down = [f"down-{i}".encode() for i in range(300)]
        _publish_confirmed(net, "a", down)
        assert _bodies(consumer, 1, 2.0) == []
        net.process("b").start()
        got = _all_then_quiet(consumer, 300, 60.0)
        assert sorted(got) == sorted(down)  # all, once each
    finally:
        consumer.disconnect()

    away = [f"away-{i}".encode() for i in range(300)]
    _publish_confirmed(net, "a", away)  # the group's only consumer is gone
    consumer = net.connect("c")
    consumer.subscribe(VT_QUEUE, id="vt")
    try:
        assert sorted(_all_then_quiet(consumer, 300, 60.0)) == sorted(away)
    finally:
        consumer.disconnect()
    assert _left_in_consumer_queues(net) == {"a": 0, "b": 0, "c": 0}
