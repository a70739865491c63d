"""A durable topic subscription on RabbitMQ's STOMP plugin: durable, auto-delete false and a
stable id (RabbitMQ names the queue after it), vhost from the host header."""

from __future__ import annotations

import uuid

import pytest

from msgbus import Consumer
from msgbus.config import load_config
from msgbus.consume.subscription import Subscription
from msgbus.transport.failover import connect_first
from tests.integration.consume.conftest import count, init_store, probes, publish


@pytest.mark.parametrize("ack", ["client-individual", "client"])
def test_rabbitmq_durable_subscription_outlives_the_consumer(
    rabbitmq_stomp: str, sqlite_url: str, ack: str
) -> None:
    init_store(sqlite_url)
    name = f"msgbus-test-{uuid.uuid4().hex[:8]}"
    topic = f"/topic/{name}"
    config = load_config(
        None,
        {
            "connection": {"brokers": [rabbitmq_stomp], "vhost": "/"},
            "consumer": {
                "destination": topic,
                "subscription": name,
                "batch": 40,
                "max_wait": 0.3,
                "ack": ack,
            },
            "store_url": sqlite_url,
        },
    )
    first = Consumer(config)
    first.drain()
    first.run()
    try:
        publish(rabbitmq_stomp, topic, probes(120), vhost="/")  # nobody connected now
        second = Consumer(config)
        second.drain()
        second.run()
        assert second.stats()["stored"] == count(sqlite_url) == 120
        again = Consumer(config)  # every stored message was acknowledged: none comes back
        again.drain()
        again.run()
        assert again.stats()["received"] == 0
    finally:
        conn = connect_first(config.connection)
        Subscription(topic, name).remove(conn)
        conn.disconnect()
    # Removed: the queue and what it held are gone; a new subscriber starts empty.
    publish(rabbitmq_stomp, topic, probes(5), first_id=500, vhost="/")
    third = Consumer(config)
    third.drain()
    third.run()
    assert third.stats()["received"] == 0
    conn = connect_first(config.connection)
    Subscription(topic, name).remove(conn)
    conn.disconnect()
