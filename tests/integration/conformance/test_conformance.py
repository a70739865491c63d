"""STOMP conformance: the same tests against the embedded broker, ActiveMQ and RabbitMQ.

The client is stomp.py in every case. Where the brokers' semantics differ, the test
says so with ``target.differs({...})`` (a skip carrying the reason); the table below
lists those differences:

=============================  =================  =====================  ====================
behaviour                      embedded (msgbus)  ActiveMQ 5.17          RabbitMQ 3.10 STOMP
=============================  =================  =====================  ====================
NACK                           to /queue/DLQ.<q>  to DLQ.<q> (persist.)  requeue (no DLX)
virtual topics                 yes                yes                    no
durable sub, ActiveMQ form     yes                yes                    no (ignored)
durable sub, RabbitMQ form     yes                no (plain sub)         yes
removing a durable sub         active or not      only when inactive     while active
prefetch header                both names         activemq.prefetchSize  prefetch-count
close after ERROR (bad ACK)    yes (spec: MUST)   no                     no
receipt-id on that ERROR       yes                yes                    no
=============================  =================  =====================  ====================
"""

from __future__ import annotations

import contextlib
import time

import pytest
import stomp

from tests.integration.conformance.clients import Target


def test_version_negotiation_and_heart_beat_header(target: Target) -> None:
    client = target.client(version="1.1", heartbeats=(4000, 4000))
    try:
        headers = client.events.connected_headers
        assert headers["version"] == "1.1"
        send_ms, recv_ms = (int(v) for v in headers["heart-beat"].split(","))
        assert send_ms >= 0 and recv_ms >= 0
    finally:
        client.close()


def test_queue_round_trip_keeps_headers_and_body(target: Target, name: str) -> None:
    client = target.client()
    try:
        client.conn.subscribe(f"/queue/{name}", id="1", ack="auto")
        body = "grid probe ✓ 1"
        client.conn.send(f"/queue/{name}", body, headers={"x-site": "CERN-PROD"}, receipt="sent")
        client.receipt("sent")
        [message] = client.messages(1)
        assert message.body == body
        assert message.headers["x-site"] == "CERN-PROD"
        assert message.headers["destination"] == f"/queue/{name}"
        assert message.headers["message-id"]
        assert message.headers["subscription"] == "1"
    finally:
        client.close()


def test_competing_consumers_each_message_once(target: Target, name: str) -> None:
    a, b, producer = target.client(), target.client(), target.client()
    try:
        for client in (a, b):
            client.conn.subscribe(
                f"/queue/{name}",
                id="1",
                ack="client-individual",
                headers={"activemq.prefetchSize": "1", "prefetch-count": "1"},
            )
        for i in range(20):
            producer.conn.send(f"/queue/{name}", str(i))
        got: list[str] = []
        while len(got) < 20:
            for client in (a, b):
                for message in client.quiet(0.1):
                    got.append(message.body)
                    client.conn.ack(message.headers["ack"])
        assert sorted(got, key=int) == [str(i) for i in range(20)]
    finally:
        for client in (a, b, producer):
            client.close()


def test_topic_fans_out_to_every_subscriber(target: Target, name: str) -> None:
    a, b, producer = target.client(), target.client(), target.client()
    try:
        for client in (a, b):
            client.conn.subscribe(f"/topic/{name}", id="t", ack="auto", receipt="sub")
            client.receipt("sub")
        for i in range(5):
            producer.conn.send(f"/topic/{name}", str(i))
        assert [m.body for m in a.messages(5)] == [m.body for m in b.messages(5)]
    finally:
        for client in (a, b, producer):
            client.close()


def test_prefetch_limits_unacked_deliveries(target: Target, name: str) -> None:
    consumer, producer = target.client(), target.client()
    try:
        for i in range(3):
            producer.conn.send(f"/queue/{name}", str(i), receipt=f"r{i}")
            producer.receipt(f"r{i}")
        consumer.conn.subscribe(
            f"/queue/{name}",
            id="1",
            ack="client-individual",
            headers={"activemq.prefetchSize": "1", "prefetch-count": "1"},
        )
        [first] = consumer.messages(1)
        assert consumer.quiet() == []
        consumer.conn.ack(first.headers["ack"])
        assert [m.body for m in consumer.messages(1)] == ["1"]
    finally:
        consumer.close()
        producer.close()


@pytest.mark.parametrize("mode", ["client", "client-individual"])
def test_unacked_messages_are_redelivered(target: Target, name: str, mode: str) -> None:
    producer = target.client()
    first = target.client()
    try:
        for i in range(3):
            producer.conn.send(f"/queue/{name}", str(i), receipt=f"r{i}")
            producer.receipt(f"r{i}")
        first.conn.subscribe(f"/queue/{name}", id="1", ack=mode)
        messages = first.messages(3)
        # client: acking the 2nd acks the 1st too; client-individual: only the 2nd.
        first.conn.ack(messages[1].headers["ack"], receipt="acked")
        first.receipt("acked")
    finally:
        first.close()
    second = target.client()
    try:
        second.conn.subscribe(f"/queue/{name}", id="1", ack="auto")
        expected = ["2"] if mode == "client" else ["0", "2"]
        again = second.messages(len(expected))
        assert sorted(m.body for m in again) == expected
        assert all(m.headers.get("redelivered") == "true" for m in again)
        assert second.quiet() == []
    finally:
        second.close()
        producer.close()


def test_nack_moves_the_message_to_the_dead_letter_queue(target: Target, name: str) -> None:
    target.differs({"rabbitmq": "NACK requeues, or drops without a dead-letter exchange"})
    client = target.client()
    try:
        # ActiveMQ dead-letters only persistent messages (processNonPersistent=false).
        client.conn.send(f"/queue/{name}", "poison", persistent="true", receipt="s")
        client.receipt("s")
        client.conn.subscribe(f"/queue/{name}", id="1", ack="client-individual")
        [message] = client.messages(1)
        client.conn.nack(message.headers["ack"], receipt="n")
        client.receipt("n")
        client.conn.subscribe(f"/queue/DLQ.{name}", id="2", ack="auto")
        [dead] = client.messages(1, timeout=15)
        assert dead.body == "poison"
    finally:
        client.close()


def test_virtual_topic_feeds_consumer_queues(target: Target, name: str) -> None:
    target.differs({"rabbitmq": "no virtual topics (an ActiveMQ feature)"})
    topic = f"VirtualTopic.{name.replace('.', '_')}"
    a, b, producer = target.client(), target.client(), target.client()
    try:
        a.conn.subscribe(f"/queue/Consumer.A.{topic}", id="1", receipt="sa")
        b.conn.subscribe(f"/queue/Consumer.B.{topic}", id="1", receipt="sb")
        a.receipt("sa")
        b.receipt("sb")
        producer.conn.send(f"/topic/{topic}", "fan", receipt="s")
        producer.receipt("s")
        assert [m.body for m in a.messages(1)] == [m.body for m in b.messages(1)] == ["fan"]
    finally:
        for client in (a, b, producer):
            client.close()


@pytest.mark.parametrize("form", ["activemq", "rabbitmq"])
def test_durable_subscription_receives_what_was_sent_while_away(
    target: Target, name: str, form: str
) -> None:
    if form == "activemq":
        target.differs({"rabbitmq": "activemq.subscriptionName is not understood"})
        sub_headers = {"activemq.subscriptionName": "grid"}
        client_id: str | None = f"id-{name}"
    else:
        target.differs({"activemq": "durable:true is not understood (a plain subscription)"})
        sub_headers = {"durable": "true", "auto-delete": "false"}
        client_id = None
    topic = f"/topic/{name}"
    sub_id = f"durable-{name}"
    subscriber = target.client(client_id=client_id)
    subscriber.conn.subscribe(topic, id=sub_id, ack="auto", headers=sub_headers, receipt="s")
    subscriber.receipt("s")
    subscriber.close()
    producer = target.client()
    producer.conn.send(topic, "while away", persistent="true", receipt="p")
    producer.receipt("p")
    producer.close()
    back = target.client(client_id=client_id)
    try:
        back.conn.subscribe(topic, id=sub_id, ack="auto", headers=sub_headers)
        assert [m.body for m in back.messages(1)] == ["while away"]
        if form == "rabbitmq":
            # RabbitMQ removes it by UNSUBSCRIBE durable:true on the active subscription.
            back.conn.unsubscribe(sub_id, headers=sub_headers, receipt="u")
            back.receipt("u")
    finally:
        back.close()
    if form == "activemq":
        # ActiveMQ removes it only once inactive, from a connection with its client-id.
        cleanup = target.client(client_id=client_id)
        try:
            cleanup.conn.unsubscribe(sub_id, headers=sub_headers, receipt="u")
            cleanup.receipt("u")
        finally:
            cleanup.close()


def test_transactions_commit_and_abort(target: Target, name: str) -> None:
    consumer, producer = target.client(), target.client()
    try:
        consumer.conn.subscribe(f"/queue/{name}", id="1", ack="auto", receipt="s")
        consumer.receipt("s")
        kept = producer.conn.begin()
        producer.conn.send(f"/queue/{name}", "kept", transaction=kept)
        dropped = producer.conn.begin()
        producer.conn.send(f"/queue/{name}", "dropped", transaction=dropped)
        assert consumer.quiet() == []
        producer.conn.abort(dropped)
        producer.conn.commit(kept)
        assert [m.body for m in consumer.messages(1)] == ["kept"]
        assert consumer.quiet() == []
    finally:
        consumer.close()
        producer.close()


def test_protocol_error_gets_an_error_frame(target: Target, name: str) -> None:
    client = target.client()
    try:
        # ACK of a message that was never delivered.
        client.conn.ack("no-such-message", receipt="r")
        error = client.error()
        assert error.headers.get("message")
        # receipt-id on the ERROR is a SHOULD; RabbitMQ leaves it out.
        assert error.headers.get("receipt-id") == (None if target.kind == "rabbitmq" else "r")
        # The spec says the server MUST close after an ERROR; the embedded broker does,
        # ActiveMQ and RabbitMQ keep this connection open (see the table above).
        time.sleep(1)
        assert client.conn.is_connected() == (target.kind != "embedded")
    finally:
        if client.conn.is_connected():
            with contextlib.suppress(stomp.exception.StompException):
                client.conn.disconnect()


# Each selector with the events (headers) it must select, out of the same six.
_EVENTS = [
    {"job": "j1", "state": "RUNNING", "vo": "atlas", "owner": "/DC=ch/CN=Ann"},
    {"job": "j1", "state": "DONE", "vo": "atlas", "owner": "/DC=ch/CN=Ann"},
    {"job": "j2", "state": "DONE", "vo": "cms", "owner": "/DC=ch/CN=Bob"},
    {"job": "j3", "state": "ABORTED", "vo": "lhcb", "owner": "/DC=ch/CN=Ann"},
    {"job": "j4", "state": "DONE", "vo": "cms", "owner": "/DC=ch/CN=Bob_2", "exit": "0"},
    {"job": "j5", "state": "it's", "vo": "alice"},
]
_SELECTORS = [
    ("state = 'DONE'", ["j1", "j2", "j4"]),
    ("state <> 'DONE'", ["j1", "j3", "j5"]),
    ("job = 'j1' AND state = 'DONE'", ["j1"]),
    ("vo IN ('cms', 'lhcb')", ["j2", "j3", "j4"]),
    ("vo NOT IN ('cms', 'lhcb')", ["j1", "j1", "j5"]),
    ("owner LIKE '%Ann'", ["j1", "j1", "j3"]),
    ("owner LIKE '%Bob\\_%' ESCAPE '\\'", ["j4"]),
    ("owner NOT LIKE '%Ann'", ["j2", "j4"]),
    ("exit IS NULL AND vo = 'cms'", ["j2"]),
    ("exit IS NOT NULL", ["j4"]),
    ("NOT (state = 'DONE' OR vo = 'alice')", ["j1", "j3"]),
    ("state = 'it''s'", ["j5"]),
    ("exit >= 0", ["j4"]),  # a numeric string header compares as a number (as in ActiveMQ)
    ("JMSPriority BETWEEN 5 AND 9", ["j3"]),
]


@pytest.mark.parametrize(("selector", "selected"), _SELECTORS, ids=[s for s, _ in _SELECTORS])
def test_selectors_select_the_same_events(
    target: Target, name: str, selector: str, selected: list[str]
) -> None:
    target.differs({"rabbitmq": "no JMS selectors (an ActiveMQ feature)"})
    consumer, producer = target.client(), target.client()
    try:
        consumer.conn.subscribe(
            f"/topic/{name}", id="s", ack="auto", receipt="sub", headers={"selector": selector}
        )
        consumer.receipt("sub")
        for i, event in enumerate(_EVENTS):
            headers = dict(event, priority="7" if event["job"] == "j3" else "4")
            producer.conn.send(f"/topic/{name}", str(i), headers=headers, receipt=f"r{i}")
            producer.receipt(f"r{i}")
        got = [m.headers["job"] for m in consumer.quiet(1.0)]
        assert got == selected
    finally:
        consumer.close()
        producer.close()


def test_a_selector_on_competing_queue_consumers(target: Target, name: str) -> None:
    target.differs({"rabbitmq": "no JMS selectors (an ActiveMQ feature)"})
    done, other, producer = target.client(), target.client(), target.client()
    try:
        done.conn.subscribe(f"/queue/{name}", id="d", ack="auto",
                            headers={"selector": "state = 'DONE'"})  # fmt: skip
        other.conn.subscribe(f"/queue/{name}", id="o", ack="auto",
                             headers={"selector": "state <> 'DONE'"})  # fmt: skip
        for i, state in enumerate(["DONE", "RUNNING", "DONE", "QUEUED"]):
            producer.conn.send(f"/queue/{name}", str(i), headers={"state": state})
        assert sorted(m.body for m in done.messages(2)) == ["0", "2"]
        assert sorted(m.body for m in other.messages(2)) == ["1", "3"]
    finally:
        for client in (done, other, producer):
            client.close()


@pytest.mark.parametrize(
    "selector", ["state = = 'x'", "job BETWEEN 'j2' AND 'j4'", "job < 'j3'", "vo IN 'cms'"]
)
def test_an_invalid_selector_is_an_error(target: Target, name: str, selector: str) -> None:
    target.differs({"rabbitmq": "no JMS selectors (an ActiveMQ feature)"})
    client = target.client()
    try:
        client.conn.subscribe(f"/topic/{name}", id="s", headers={"selector": selector})
        error = client.events.errors.get(timeout=10)
        assert error.cmd == "ERROR"
    finally:
        client.close()
