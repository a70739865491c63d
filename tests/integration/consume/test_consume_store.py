"""msgbus.Consumer against a real ActiveMQ and PostgreSQL: durable subscriptions, dead
letters, pause/resume, metrics, a clean SIGTERM."""

from __future__ import annotations

import signal
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from msgbus import Consumer
from msgbus.config import MsgbusConfig, load_config
from msgbus.consume.subscription import Subscription
from msgbus.store.database import Store
from msgbus.store.tables import foreign_messages
from msgbus.transport.failover import connect_first
from tests.fixtures.activemq import ActiveMQ
from tests.fixtures.metrics import scrape
from tests.integration.consume.conftest import (
    ConsumeProcess,
    count,
    dead_letters,
    distinct_ids,
    init_store,
    probe_body,
    probes,
    publish,
    wait_until,
)


def _config(broker: ActiveMQ, destination: str, store_url: str, **consumer: Any) -> MsgbusConfig:
    return load_config(
        None,
        {
            "connection": {"brokers": [broker.stomp_url]},
            "consumer": {"destination": destination, "max_wait": 0.3, **consumer},
            "store_url": store_url,
        },
    )


@pytest.fixture
def running() -> Iterator[list[tuple[Consumer, threading.Thread]]]:
    """Consumers started in background threads; stopped and joined after the test."""
    started: list[tuple[Consumer, threading.Thread]] = []
    yield started
    for consumer, thread in started:
        consumer.stop()
        thread.join(30)


def _start(running: list[tuple[Consumer, threading.Thread]], consumer: Consumer) -> Consumer:
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    running.append((consumer, thread))
    return consumer


def test_durable_subscription_keeps_messages_while_the_consumer_is_away(
    activemq: ActiveMQ, postgres_url: str
) -> None:
    init_store(postgres_url)
    name = f"sub-{uuid.uuid4().hex[:8]}"
    config = _config(activemq, f"/topic/{name}", postgres_url, subscription=name, batch=100)
    first = Consumer(config)
    first.drain()
    first.run()  # creates the durable subscription, finds nothing
    publish(activemq.stomp_url, f"/topic/{name}", probes(450))
    second = Consumer(config)
    second.drain()
    second.run()
    stats = second.stats()
    assert count(postgres_url) == distinct_ids(postgres_url) == 450
    assert (stats["received"], stats["stored"], stats["acked"]) == (450, 450, 450)
    assert stats["state"] == "stopped"
    assert stats["last_lag_seconds"] is not None
    # Acked after commit: nothing is redelivered to the same subscription.
    third = Consumer(config)
    third.drain()
    third.run()
    assert third.stats()["received"] == 0
    # Removing the subscription drops it on the broker: later messages are not kept.
    conn = connect_first(config.connection, client_id=f"msgbus-{name}")
    Subscription(f"/topic/{name}", name).remove(conn)
    conn.disconnect()
    publish(activemq.stomp_url, f"/topic/{name}", probes(5), first_id=1000)
    fourth = Consumer(config)
    fourth.drain()
    fourth.run()
    assert fourth.stats()["received"] == 0


def test_invalid_messages_are_dead_lettered_foreign_ones_kept_and_consuming_goes_on(
    activemq: ActiveMQ, postgres_url: str, running: list[tuple[Consumer, threading.Thread]]
) -> None:
    init_store(postgres_url)
    queue = f"/queue/mix-{uuid.uuid4().hex[:8]}"
    good, headers = probe_body(1024, 1)
    bodies = [
        probe_body(1024, 0),
        (good.replace(b"metricStatus: OK", b"metricStatus: SUPERB"), headers),
        (b"\xff\xfe\xfd not text", {}),
        (b'{"metricName": "m"}', {"content-type": "application/json"}),
        (good, {**headers, "messageClass": "NoSuchType"}),
        probe_body(1024, 5),
    ]
    consumer = _start(running, Consumer(_config(activemq, queue, postgres_url, batch=50)))
    publish(activemq.stomp_url, queue, bodies)
    wait_until(lambda: count(postgres_url, dead_letters) == 3, 30, "3 dead letters")
    wait_until(lambda: count(postgres_url) == 2, 30, "the 2 valid messages")
    store = Store(postgres_url)
    with store.engine.connect() as conn:
        rows = {r.msg_id: r for r in conn.execute(sa.select(dead_letters))}
        [foreign] = conn.execute(sa.select(foreign_messages)).all()
    store.close()
    assert "metricStatus" in rows["m1"].reason
    # Not UTF-8, no messageClass: somebody else's payload (consumer.foreign: store).
    assert (foreign.msg_id, foreign.body) == ("m2", b"\xff\xfe\xfd not text")
    assert '"msgbus-id": "m2"' in foreign.headers
    assert "mandatory field missing" in rows["m3"].reason
    assert "NoSuchType" in rows["m4"].reason
    # Still consuming after the rejects.
    publish(activemq.stomp_url, queue, probes(10), first_id=100)
    wait_until(lambda: count(postgres_url) == 12, 30, "later valid messages")
    assert consumer.stats()["dead_lettered"] == 3


def test_paused_consumer_stores_nothing_until_resumed(
    activemq: ActiveMQ, postgres_url: str, running: list[tuple[Consumer, threading.Thread]]
) -> None:
    init_store(postgres_url)
    queue = f"/queue/pause-{uuid.uuid4().hex[:8]}"
    consumer = _start(running, Consumer(_config(activemq, queue, postgres_url, batch=20)))
    wait_until(lambda: consumer.stats()["state"] == "running", 30, "the consumer to run")
    assert consumer.pause(timeout=10)
    publish(activemq.stomp_url, queue, probes(50))
    stop_waiting = threading.Event()
    stop_waiting.wait(2.0)  # a paused consumer would have stored these by now
    assert count(postgres_url) == 0
    assert consumer.stats()["state"] == "paused"
    consumer.resume()
    wait_until(lambda: count(postgres_url) == 50, 30, "50 rows after resume")


def test_metrics_are_served_on_a_port(
    activemq: ActiveMQ, postgres_url: str, running: list[tuple[Consumer, threading.Thread]]
) -> None:
    init_store(postgres_url)
    queue = f"/queue/metrics-{uuid.uuid4().hex[:8]}"
    consumer = _start(running, Consumer(_config(activemq, queue, postgres_url, batch=10)))
    publish(activemq.stomp_url, queue, probes(25))
    publish(activemq.stomp_url, queue, probes(5))  # same msgbus-ids: duplicates
    wait_until(lambda: consumer.stats()["duplicates"] == 5, 30, "5 duplicates")
    text = scrape(consumer.metrics.registry)
    assert "msgbus_consumer_received_total 30.0" in text
    assert "msgbus_consumer_stored_total 25.0" in text
    assert "msgbus_consumer_duplicates_total 5.0" in text
    assert "msgbus_consumer_commit_latency_seconds_count" in text
    assert "msgbus_consumer_lag_seconds_bucket" in text
    assert "msgbus_consumer_batch_size_messages_bucket" in text


def test_sigterm_commits_and_acks_the_batch_in_flight(
    activemq: ActiveMQ, postgres_url: str, consume_process: Any
) -> None:
    init_store(postgres_url)
    queue = f"/queue/term-{uuid.uuid4().hex[:8]}"
    publish(activemq.stomp_url, queue, probes(2000))
    args = (
        "--broker",
        activemq.stomp_url,
        "--destination",
        queue,
        "--store",
        postgres_url,
        "--batch",
        "100",
        "--max-wait",
        "0.3",
    )
    proc: ConsumeProcess = consume_process(*args)
    wait_until(lambda: count(postgres_url) >= 200, 60, "the consumer to store some")
    proc.signal(signal.SIGTERM)
    assert proc.wait(30) == 0, proc.output()
    stored = proc.stored()
    assert count(postgres_url) == stored  # every committed message counted, nothing half-done
    rest = consume_process(*args, "--drain")
    assert rest.wait(60) == 0, rest.output()
    assert count(postgres_url) == distinct_ids(postgres_url) == 2000
    # Clean exit acked what it stored: the second run got only the rest.
    assert rest.stored() == 2000 - stored
    assert "duplicates 0" in rest.output()


def test_a_message_the_database_refuses_is_dead_lettered_not_fatal(
    activemq: ActiveMQ, sqlite_url: str
) -> None:
    init_store(sqlite_url)
    store = Store(sqlite_url)
    with store.engine.begin() as conn:  # a site policy the database enforces
        conn.exec_driver_sql(
            "CREATE TRIGGER no_poison BEFORE INSERT ON probe_results "
            "WHEN NEW.site = 'SITE-3' BEGIN SELECT RAISE(ABORT, 'site SITE-3 is banned'); END"
        )
    store.close()
    queue = f"/queue/poison-{uuid.uuid4().hex[:8]}"
    publish(activemq.stomp_url, queue, probes(10))  # sites SITE-0..SITE-4, two each
    consumer = Consumer(_config(activemq, queue, sqlite_url, batch=10))
    consumer.drain()
    consumer.run()
    assert count(sqlite_url) == 8
    assert consumer.stats()["acked"] == 10
    store = Store(sqlite_url)
    with store.engine.connect() as conn:
        reasons = conn.execute(sa.select(dead_letters.c.reason)).scalars().all()
    store.close()
    assert len(reasons) == 2
    assert all("the store refused the message" in r and "SITE-3 is banned" in r for r in reasons)


def test_first_connection_waits_while_the_client_id_is_still_held(
    activemq: ActiveMQ, sqlite_url: str
) -> None:
    """A consumer restarted right after a crash finds its client-id still taken (ActiveMQ
    has not noticed the old connection end): it waits and then consumes, not exits."""
    init_store(sqlite_url)
    name = f"busy-{uuid.uuid4().hex[:8]}"
    config = _config(activemq, f"/topic/{name}", sqlite_url, subscription=name, batch=5)
    subscription = Subscription(f"/topic/{name}", name)
    holder = connect_first(config.connection, client_id=subscription.client_id(None))
    consumer = Consumer(config)

    def drain_then_run() -> None:
        consumer.drain()
        consumer.run()

    finished = threading.Thread(target=drain_then_run)
    finished.start()
    try:
        wait_until(lambda: consumer.stats()["state"] == "connecting", 10, "a connection attempt")
        threading.Event().wait(1.5)  # refused at least once meanwhile
        assert finished.is_alive() and consumer.stats()["state"] == "connecting"
    finally:
        holder.disconnect()
    finished.join(60)
    assert not finished.is_alive()
    assert consumer.stats()["state"] == "stopped"
