"""What to SUBSCRIBE to, in each broker's dialect.

Three shapes: a durable topic subscription that outlives the consumer (ActiveMQ:
``client-id`` on CONNECT plus ``activemq.subscriptionName``; RabbitMQ: ``durable``,
``auto-delete: false`` and a stable ``id``, from which it names the queue), a plain
queue, or an ActiveMQ virtual-topic consumer queue
(``/queue/Consumer.NAME.VirtualTopic.X``) that several processes share. Prefetch is
capped so unacknowledged messages never exceed what the consumer holds in memory.

The embedded broker (``server: msgbus/...``) speaks ActiveMQ's vocabulary. A broker the
consumer does not recognise gets every durable vocabulary it knows (brokers ignore
headers they do not define), never a plain subscription that would silently lose what
arrives while the consumer is away.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from msgbus.errors import ConfigError
from msgbus.stomp.frames import ErrorFrame, MessageFrame
from msgbus.stomp.headers import SYNC_HEADER
from msgbus.transport.connection import Connection, broker_error

__all__ = ["Subscription", "broker_kind", "message_frames"]


_VOCABULARIES = {"activemq": "activemq", "msgbus": "activemq", "rabbitmq": "rabbitmq"}


def broker_kind(server: str) -> str:
    """The SUBSCRIBE vocabulary from the CONNECTED frame's server header: ``activemq``
    (ActiveMQ and the embedded broker), ``rabbitmq`` or ``other``."""
    return _VOCABULARIES.get(server.split("/", 1)[0].strip().lower(), "other")


@dataclass(frozen=True, slots=True)
class Subscription:
    """A destination and, for a durable topic subscription, its name."""

    destination: str
    name: str | None = None
    selector: str | None = None
    """A JMS selector: only the messages it selects (ActiveMQ, the embedded broker)."""

    def __post_init__(self) -> None:
        # /amq/queue/: RabbitMQ's existing queue, declared by nobody but its operator
        # (a cluster's quorum queue, which a /queue/ SUBSCRIBE would redeclare as classic).
        if not self.destination.startswith(("/topic/", "/queue/", "/amq/queue/")):
            raise ConfigError(
                f"consumer destination {self.destination!r} must start with /topic/, "
                "/queue/ or (RabbitMQ) /amq/queue/ (a virtual-topic consumer queue is "
                "/queue/Consumer.NAME.VirtualTopic.X)"
            )
        if self.name is not None and not self.name.strip():
            raise ConfigError("consumer subscription name is empty; give a stable name or none")

    @property
    def durable(self) -> bool:
        """A named subscription to a topic: it keeps messages while the consumer is away."""
        return self.name is not None and self.destination.startswith("/topic/")

    @property
    def id(self) -> str:
        # RabbitMQ derives the durable queue from this id: it must never change.
        return self.name or "msgbus-consumer"

    def client_id(self, configured: str | None) -> str | None:
        """CONNECT client-id: ActiveMQ keys durable subscriptions on it, so it is stable."""
        if configured:
            return configured
        return f"msgbus-{self.name}" if self.durable else None

    def headers(self, kind: str, prefetch: int) -> dict[str, str]:
        """SUBSCRIBE headers beyond destination/id/ack for a broker of ``kind``."""
        if self.selector and kind == "rabbitmq":
            # It would ignore the header and deliver everything: refuse, do not pretend.
            raise ConfigError(
                "RabbitMQ has no JMS selectors; drop consumer.selector, or select by "
                "destination (a topic per site or VO) instead"
            )
        headers: dict[str, str] = {"selector": self.selector} if self.selector else {}
        if kind == "activemq":
            headers["activemq.prefetchSize"] = str(prefetch)
            if self.durable:
                assert self.name is not None
                headers["activemq.subscriptionName"] = self.name
        elif kind == "rabbitmq":
            headers["prefetch-count"] = str(prefetch)
            if self.durable:
                headers["durable"] = "true"
                headers["auto-delete"] = "false"
        else:
            headers["activemq.prefetchSize"] = str(prefetch)
            headers["prefetch-count"] = str(prefetch)
            if self.durable:
                assert self.name is not None
                headers["activemq.subscriptionName"] = self.name  # ActiveMQ 5
                headers["durable-subscription-name"] = self.name  # ActiveMQ Artemis
                headers["durable"] = "true"  # RabbitMQ
                headers["auto-delete"] = "false"
                headers["persistent"] = "true"  # Apollo
        return headers

    def subscribe(self, conn: Connection, prefetch: int, ack: str = "client-individual") -> None:
        """SUBSCRIBE with client acknowledgement (``client-individual`` or cumulative
        ``client``); waits for the receipt."""
        conn.subscribe(
            self.destination,
            id=self.id,
            ack=ack,
            headers=self.headers(broker_kind(conn.server), prefetch),
        )

    def remove(self, conn: Connection, *, subscribed: bool = False) -> None:
        """Delete a durable subscription and the messages it holds (``subscribed``: this
        connection has it open already).

        ActiveMQ wants the live subscription closed (UNSUBSCRIBE id) before the
        UNSUBSCRIBE naming ``activemq.subscriptionName`` drops it; RabbitMQ deletes
        the durable queue on UNSUBSCRIBE with ``durable: true``.
        """
        if not self.durable:
            raise ConfigError(f"{self.destination} has no durable subscription to remove")
        assert self.name is not None
        if not subscribed:
            self.subscribe(conn, 1)
        if broker_kind(conn.server) == "rabbitmq":
            conn.unsubscribe(id=self.id, headers={"durable": "true", "auto-delete": "false"})
            return
        conn.unsubscribe(id=self.id)
        conn.unsubscribe(id=self.id, headers={"activemq.subscriptionName": self.name})


def message_frames(conn: Connection, stop_at: float | None) -> Iterator[MessageFrame]:
    """The MESSAGE frames ``conn`` receives until ``stop_at`` (``time.monotonic()``; None:
    for ever), publishers' sync records left out; an ERROR frame raises BrokerError."""
    while True:
        wait = 1.0 if stop_at is None else stop_at - time.monotonic()
        if wait <= 0:
            return
        frame = conn.receive(min(wait, 1.0))
        if isinstance(frame, ErrorFrame):
            raise broker_error(conn.url, frame)
        if isinstance(frame, MessageFrame) and SYNC_HEADER not in frame.headers:
            yield frame
