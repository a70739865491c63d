"""stompest (PyPI) against ``msgbus broker serve`` and ActiveMQ: its synchronous client
``stompest.sync.Stomp`` (connect, send, subscribe, ack, receipts), and its failover URI,
which reconnects to the second broker of ``failover:(tcp://a,tcp://b)`` when the first is
down and replays its subscriptions there."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from stompest.config import StompConfig
from stompest.error import StompConnectionError
from stompest.protocol import StompFrame, StompSpec
from stompest.sync import Stomp

from tests.fixtures.pipeline import EmbeddedBroker
from tests.integration.conformance.clients import Target

pytestmark = pytest.mark.interop


def _client(uri: str, target: Target | None = None, version: str = "1.2") -> Stomp:
    login = (target.login, target.passcode) if target is not None else (None, None)
    client = Stomp(StompConfig(uri, *login, version=version))
    client.connect(host="localhost", connectedTimeout=10)
    return client


def _next(client: Stomp, timeout: float = 10.0) -> StompFrame:
    assert client.canRead(timeout), f"no frame within {timeout} s"
    frame: StompFrame = client.receiveFrame()
    return frame


def _receipt(client: Stomp, receipt: str) -> None:
    frame = _next(client)
    assert frame.command == StompSpec.RECEIPT, frame.info()
    assert client.receipt(frame) == receipt


def _receipt_and_message(client: Stomp, receipt: str) -> StompFrame:
    """The RECEIPT of a SEND and the one MESSAGE it leads to on a subscription of the same
    connection, in either order: the spec orders neither."""
    frames = [_next(client), _next(client)]
    [message] = [f for f in frames if f.command == StompSpec.MESSAGE]
    [done] = [f for f in frames if f.command == StompSpec.RECEIPT]
    assert client.receipt(done) == receipt
    return message


@pytest.mark.parametrize("version", ["1.0", "1.2"])
def test_sync_client_send_subscribe_ack_and_receipts(
    target: Target, name: str, version: str
) -> None:
    uri = f"tcp://{target.host}:{target.port}"
    queue = f"/queue/{name}"
    client = _client(uri, target, version)
    try:
        assert client.session.version == version
        client.send(queue, b"grid probe \xe2\x9c\x93", {"x-site": "CERN-PROD"}, receipt="sent")
        _receipt(client, "sent")
        headers = {StompSpec.ACK_HEADER: StompSpec.ACK_CLIENT_INDIVIDUAL, StompSpec.ID_HEADER: "1"}
        client.subscribe(queue, headers, receipt="subscribed")
        # Both brokers send a SUBSCRIBE's RECEIPT before the queue's backlog.
        _receipt(client, "subscribed")
        message = _next(client)
        assert message.command == StompSpec.MESSAGE, message.info()
        assert message.body == b"grid probe \xe2\x9c\x93"
        assert message.headers["x-site"] == "CERN-PROD"
        client.ack(message, receipt="acked")
        _receipt(client, "acked")
        client.disconnect(receipt="bye")
        _receipt(client, "bye")
    finally:
        client.close()
    # The ACK took: a new session finds nothing left.
    again = _client(uri, target, version)
    try:
        again.subscribe(queue, {StompSpec.ID_HEADER: "1"})
        assert not again.canRead(1.5)
    finally:
        again.close()


# stompest 2.3 leaves the socket of a refused connection to the garbage collector
# (sync/transport.py connect); that is its own leak, not msgbus's.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_failover_uri_moves_to_the_second_broker_and_replays_subscriptions(
    embedded_broker_process: Callable[..., EmbeddedBroker], name: str
) -> None:
    first, second = embedded_broker_process(), embedded_broker_process()
    # stompest tries only the first broker at start-up unless startupMaxReconnectAttempts
    # allows more (ActiveMQ's own failover transport has the same option).
    uri = (
        f"failover:(tcp://127.0.0.1:{first.port},tcp://127.0.0.1:{second.port})"
        "?randomize=false,startupMaxReconnectAttempts=1,initialReconnectDelay=100"
    )
    queue = f"/queue/{name}"
    client = _client(uri)
    try:
        client.subscribe(queue, {StompSpec.ID_HEADER: "1"}, receipt="s1")
        _receipt(client, "s1")
        client.send(queue, b"on the first", receipt="p1")
        assert _receipt_and_message(client, "p1").body == b"on the first"
        first.kill()
        with pytest.raises(StompConnectionError):
            client.canRead(10)
        client.close(flush=False)  # keep the subscription, to be replayed
        client.connect(host="localhost", connectedTimeout=10)
        _receipt(client, "s1")  # the replayed SUBSCRIBE, with its receipt header
        client.send(queue, b"on the second", receipt="p2")
        assert _receipt_and_message(client, "p2").body == b"on the second"
        client.disconnect()
    finally:
        client.close()
    # And with the first broker down from the start, a new client goes straight on.
    late = _client(uri)
    try:
        late.send(queue, b"late", receipt="p3")
        _receipt(late, "p3")
    finally:
        late.close()
    assert first.process is not None and not first.process.running()
