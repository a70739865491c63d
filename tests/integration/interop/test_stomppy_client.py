"""stomp.py against ``msgbus broker serve`` and ActiveMQ, where the conformance suite
(tests/integration/conformance) does not already drive it: it covers the durable
subscription (both forms), selectors and BEGIN/SEND/COMMIT/ABORT; this adds ACK inside
a transaction and a durable subscription with a selector, as grid consumers hold them."""

from __future__ import annotations

import pytest

from tests.integration.conformance.clients import Target

pytestmark = pytest.mark.interop


@pytest.mark.parametrize("ending", ["commit", "abort"])
def test_ack_in_a_transaction(target: Target, name: str, ending: str) -> None:
    queue = f"/queue/{name}"
    producer = target.client()
    try:
        for body in ("first", "second"):
            producer.conn.send(queue, body, persistent="true", receipt=body)
            producer.receipt(body)
    finally:
        producer.close()
    consumer = target.client()
    try:
        consumer.conn.subscribe(queue, id="1", ack="client-individual")
        first, second = consumer.messages(2)
        consumer.conn.ack(second.headers["ack"], receipt="plain")
        consumer.receipt("plain")
        tx = consumer.conn.begin()
        consumer.conn.ack(first.headers["ack"], transaction=tx)
        if ending == "commit":
            consumer.conn.commit(tx, receipt="end")
        else:
            consumer.conn.abort(tx, receipt="end")
        consumer.receipt("end")
    finally:
        consumer.close()
    # An aborted ACK leaves the message unacknowledged: it comes back to the next consumer.
    again = target.client()
    try:
        again.conn.subscribe(queue, id="1", ack="auto")
        back = again.quiet(1.5)
        assert [m.body for m in back] == ([] if ending == "commit" else ["first"])
    finally:
        again.close()


def test_durable_subscription_with_a_selector_across_a_disconnect(
    target: Target, name: str
) -> None:
    topic = f"/topic/{name}"
    client_id = f"id-{name}"
    sub = {"activemq.subscriptionName": "done-only", "selector": "state = 'DONE'"}
    subscriber = target.client(client_id=client_id)
    subscriber.conn.subscribe(topic, id="d", ack="client-individual", headers=sub, receipt="s")
    subscriber.receipt("s")
    subscriber.close()
    producer = target.client()
    try:
        for i, state in enumerate(["DONE", "RUNNING", "DONE", "ABORTED"]):
            producer.conn.send(topic, str(i), headers={"state": state}, persistent="true",
                               receipt=f"p{i}")  # fmt: skip
            producer.receipt(f"p{i}")
    finally:
        producer.close()
    back = target.client(client_id=client_id)
    try:
        back.conn.subscribe(topic, id="d", ack="client-individual", headers=sub)
        got = back.messages(2)
        assert [m.body for m in got] == ["0", "2"]
        for message in got:
            back.conn.ack(message.headers["ack"])
        assert back.quiet() == []
    finally:
        back.close()
    # ActiveMQ removes a durable subscription only while it is inactive.
    cleanup = target.client(client_id=client_id)
    try:
        cleanup.conn.unsubscribe("d", headers=sub, receipt="u")
        cleanup.receipt("u")
    finally:
        cleanup.close()
