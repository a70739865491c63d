"""Destinations and dispatch: queues, topics, subscriptions, acks, dead letters.

Every subscriber reads from a ``MessageQueue``: a ``/queue/`` is one shared queue
(competing consumers, round-robin within each consumer's prefetch window), while a
``/topic/`` subscription gets a queue of its own that the topic fans out to. Durable
topic subscriptions and virtual-topic consumer queues are queues that outlive their
consumers. All of this runs on the event loop thread, synchronously: no coroutine
per message.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from typing import Protocol

from msgbus.broker.auth import Gatekeeper, LimitExceeded, Owner
from msgbus.broker.flow import Waiters
from msgbus.broker.message import Message
from msgbus.broker.selector import InvalidSelector, Selector
from msgbus.broker.store import DurableRecord, MessageStore, StoredMessage
from msgbus.stomp import Version, encode_headers

__all__ = [
    "ACK_MODES",
    "Consumer",
    "DestinationError",
    "MessageQueue",
    "Router",
    "Subscription",
]

log = logging.getLogger("msgbus.broker")

ACK_MODES = ("auto", "client", "client-individual")
# ActiveMQ virtual topics: /topic/VirtualTopic.X feeds /queue/Consumer.<any>.VirtualTopic.X.
_VIRTUAL_CONSUMER = re.compile(r"^/queue/Consumer\.[^.]+\.(VirtualTopic\..+)$")
_subscription_serials = itertools.count(1)


def _text(selector: Selector | None) -> str | None:
    return selector.text if selector is not None else None


def _check_queue_name(name: str) -> None:
    if not name.startswith("/queue/") or len(name) == len("/queue/"):
        raise DestinationError(f"{name!r} is not a queue name: use /queue/<name>")


class DestinationError(Exception):
    """The client named a destination or subscription the broker cannot serve."""


class Consumer(Protocol):
    """What a subscription needs from the session that owns it."""

    @property
    def version(self) -> Version: ...

    writable: bool

    def write(self, data: bytes) -> None: ...


class Subscription:
    """One SUBSCRIBE of one session: its ack mode, prefetch window and unacked messages."""

    __slots__ = (
        "_ack_tag",
        "_auto",
        "_prefix",
        "ack_mode",
        "durable",
        "id",
        "inflight",
        "prefetch",
        "queue",
        "selector",
        "session",
    )

    def __init__(
        self,
        session: Consumer,
        sub_id: str,
        queue: MessageQueue,
        ack_mode: str,
        prefetch: int,
        *,
        durable: bool = False,
        selector: Selector | None = None,
    ) -> None:
        self.session = session
        self.id = sub_id
        self.selector = selector
        self.queue = queue
        self.ack_mode = ack_mode
        self.prefetch = prefetch
        self.durable = durable
        self._auto = ack_mode == "auto"
        self.inflight: dict[str, Message] = {}  # ack id -> message, in delivery order
        self._prefix = b"MESSAGE\n" + encode_headers(
            "MESSAGE", {"subscription": sub_id}, session.version
        )
        # STOMP 1.2 acks by the MESSAGE's ack header: tagged per subscription, because two
        # topic subscriptions of one connection receive copies with the same message-id.
        # Older versions ack by message-id (and subscription, in 1.1).
        self._ack_tag = f"{next(_subscription_serials)}-" if session.version == "1.2" else None

    def ready(self) -> bool:
        return self.session.writable and (self._auto or len(self.inflight) < self.prefetch)

    def deliver(self, message: Message) -> None:
        parts = [self._prefix]
        if message.redeliveries:
            parts.append(b"redelivered:true\n")
        if self._ack_tag is None:
            ack_id = message.message_id
        else:
            ack_id = self._ack_tag + message.message_id
            parts += (b"ack:", ack_id.encode(), b"\n")
        parts.append(message.tail(self.session.version))
        if self._auto:
            self.queue.remove(message)
        else:
            self.inflight[ack_id] = message
            self.queue.unacked += 1
        self.queue.router.delivered += 1
        self.session.write(b"".join(parts))

    def take_acked(self, ack_id: str) -> list[Message]:
        """Remove and return what an ACK of ``ack_id`` covers (cumulative in client mode)."""
        if ack_id not in self.inflight:
            return []
        if self.ack_mode != "client":
            acked = [self.inflight.pop(ack_id)]
        else:
            acked = []
            for key in list(self.inflight):
                acked.append(self.inflight.pop(key))
                if key == ack_id:
                    break
        self.queue.unacked -= len(acked)
        return acked

    def release(self) -> list[Message]:
        """Give up every unacked message (the consumer goes away), in delivery order."""
        unacked = list(self.inflight.values())
        self.inflight.clear()
        self.queue.unacked -= len(unacked)
        return unacked


class MessageQueue:
    """Ready messages plus the consumers competing for them."""

    def __init__(
        self,
        router: Router,
        name: str,
        *,
        stored: bool,
        dlq: str | None,
        drop_oldest: bool = False,
    ) -> None:
        self.router = router
        self.name = name
        self.stored = stored  # persistent messages are written to the store
        self.dlq = dlq
        # A non-durable topic subscriber that falls behind loses its oldest messages
        # instead of blocking every producer of the topic.
        self.drop_oldest = drop_oldest
        self.ready: deque[Message] = deque()
        self.unacked = 0  # delivered to a consumer of this queue, not yet acked
        self.consumers: list[Subscription] = []
        self.creator: str | None = None  # the user whose budget it counts against
        # A topic subscription's own queue takes only what its selector selects.
        self.selector: Selector | None = None
        self._next = 0

    def depth(self) -> int:
        return len(self.ready) + self.unacked

    def put(self, message: Message) -> None:
        if self.stored and message.persistent:
            message.seq = self.router.store.insert(
                self.name, message.headers, message.body, message.redeliveries
            )
        if self.drop_oldest and len(self.ready) >= self.router.gate.limits.max_queue_depth:
            self.remove(self.ready.popleft())
        self.ready.append(message)
        self.dispatch()

    def remove(self, message: Message) -> None:
        """The message is done with (acked, or consumed in auto mode)."""
        if message.seq:
            self.router.store.delete(message.seq)
        if self.router.blocked:
            self.router.room(self)

    def dispatch(self) -> None:
        ready, consumers = self.ready, self.consumers
        if any(c.selector is not None for c in consumers):
            self._dispatch_selected()
            return
        if len(consumers) == 1:  # the common case, without the round-robin bookkeeping
            consumer = consumers[0]
            while ready and consumer.ready():
                consumer.deliver(ready.popleft())
            return
        while ready and consumers:
            count = len(consumers)
            start = self._next
            for step in range(count):
                consumer = consumers[(start + step) % count]
                if consumer.ready():
                    break
            else:
                return
            self._next = (start + step + 1) % count
            consumer.deliver(ready.popleft())

    def _dispatch_selected(self) -> None:
        """Consumers with selectors on a queue: each message goes, round robin, to a ready
        consumer that selects it; the ones nobody ready selects keep their place."""
        kept: deque[Message] = deque()
        consumers = self.consumers
        while self.ready:
            message = self.ready.popleft()
            count = len(consumers)
            for step in range(count):
                consumer = consumers[(self._next + step) % count]
                if consumer.ready() and (
                    consumer.selector is None
                    or consumer.selector.matches(message.headers, redeliveries=message.redeliveries)
                ):
                    self._next = (self._next + step + 1) % count
                    consumer.deliver(message)
                    break
            else:
                kept.append(message)
        self.ready = kept

    def requeue(self, messages: Iterable[Message]) -> None:
        """Put unacked messages back in front, in their order, marked as redelivered."""
        back = []
        for message in messages:
            message.redeliveries += 1
            if message.redeliveries > self.router.max_redeliveries:
                self.router.dead_letter(self, message, "too many redeliveries")
            else:
                self.router.store.set_redeliveries(message.seq, message.redeliveries)
                back.append(message)
        self.ready.extendleft(reversed(back))


class Router:
    """All destinations of one broker, by name."""

    def __init__(
        self, store: MessageStore, gate: Gatekeeper, *, max_redeliveries: int, id_prefix: str
    ) -> None:
        self.store = store
        self.gate = gate
        self.max_redeliveries = max_redeliveries
        self.queues: dict[str, MessageQueue] = {}
        self.topics: dict[str, list[MessageQueue]] = {}
        self.blocked = Waiters()  # producers held by flow control
        store.forget = self._forget
        self.received = 0
        self.delivered = 0
        self._temp = 0
        self._control = 0  # control queues among self.queues (a pool of their own)
        self._id_prefix = id_prefix
        self._ids = 0

    # -- destinations -----------------------------------------------------------------

    def queue(self, name: str) -> MessageQueue:
        queue = self.queues.get(name)
        if queue is None:
            _check_queue_name(name)
            dlq = None if name.startswith("/queue/DLQ.") else "/queue/DLQ." + name[7:]
            queue = self.queues[name] = MessageQueue(self, name, stored=True, dlq=dlq)
            self._control += self.gate.is_reserved(name)
            virtual = _VIRTUAL_CONSUMER.match(name)
            if virtual:
                self.topics.setdefault("/topic/" + virtual.group(1), []).append(queue)
        return queue

    def client_queue(
        self, name: str, owner: Owner | None = None, *, subscribing: bool = False
    ) -> MessageQueue:
        """The queue a client names; creating one spends the owner's budget (see
        Gatekeeper.check_new_destination for what a SUBSCRIBE may create)."""
        queue = self.queues.get(name)
        if queue is None:
            _check_queue_name(name)
            try:
                self._check_new(name, owner, subscribing=subscribing)
            except LimitExceeded:
                if not self._reclaim():
                    raise
                self._check_new(name, owner, subscribing=subscribing)
            queue = self.queue(name)
            self.gate.created(owner)
            queue.creator = owner.user if owner is not None else None
        return queue

    def _check_new(
        self, name: str, owner: Owner | None, planned: int = 0, *, subscribing: bool = False
    ) -> None:
        existing = (len(self.queues), self._control)
        self.gate.check_new_destination(name, existing, owner, planned, subscribing=subscribing)

    def _reclaim(self) -> bool:
        """Drop the queues nobody uses (empty, no consumers, not a virtual-topic queue),
        as ActiveMQ's gcInactiveDestinations does; True if any went."""
        idle = [
            q
            for name, q in self.queues.items()
            if name.startswith("/queue/")
            and not q.consumers
            and not q.depth()
            and not _VIRTUAL_CONSUMER.match(name)
        ]
        for queue in idle:
            self._drop_queue(queue)
        return bool(idle)

    def _targets(self, destination: str, owner: Owner | None = None) -> Sequence[MessageQueue]:
        if destination.startswith("/queue/"):
            return [self.client_queue(destination, owner)]
        if destination.startswith("/topic/") and len(destination) > len("/topic/"):
            return self.topics.get(destination, [])
        raise DestinationError(
            f"unsupported destination {destination!r}: use /queue/<name> or /topic/<name>"
        )

    # -- messages ---------------------------------------------------------------------

    def admit(self, destinations: Iterable[str], owner: Owner | None = None) -> None:
        """Raise what :meth:`send` would raise for any of these messages, before any of
        them is routed: a transaction's COMMIT delivers all of its messages or none
        (QueueFull while a queue has no room for all of them yet)."""
        adding: Counter[str] = Counter()  # queue name -> messages it would take
        depths: dict[str, int] = {}
        for destination in destinations:
            if destination.startswith("/queue/") and destination not in self.queues:
                if destination not in adding:  # a queue this commit would create
                    _check_queue_name(destination)
                    created = sum(name not in self.queues for name in adding)
                    self._check_new(destination, owner, planned=created)
                    depths[destination] = 0
                adding[destination] += 1
                continue
            for target in self._targets(destination):
                if not target.drop_oldest:
                    adding[target.name] += 1
                    depths[target.name] = target.depth()
        for name, count in adding.items():
            self.gate.check_depth(name, depths[name], count)

    def room(self, queue: MessageQueue) -> None:
        """``queue`` shrank: wake the producers held for it if it has room (or is gone)."""
        if queue.name in self.blocked and (
            queue.depth() < self.gate.limits.max_queue_depth
            or self.queues.get(queue.name) is not queue
        ):
            self.blocked.wake(queue.name)

    def send(
        self,
        destination: str,
        headers: dict[str, str],
        body: bytes,
        owner: Owner | None = None,
        *,
        admitted: bool = False,
    ) -> None:
        """Route one message, giving it a message-id; QueueFull if a queue is full,
        unless the message was ``admitted`` already (with its transaction)."""
        # Fast path for an existing queue; durable subscription queues are not addressable.
        queue = self.queues.get(destination) if destination.startswith("/queue/") else None
        targets = (queue,) if queue is not None else self._targets(destination, owner)
        max_depth = self.gate.limits.max_queue_depth
        for target in targets:
            full = len(target.ready) + target.unacked >= max_depth
            if full and not target.drop_oldest and not admitted:
                self.gate.check_depth(target.name, target.depth())
        self.received += 1
        self._ids += 1
        headers["message-id"] = f"{self._id_prefix}{self._ids}"  # never the client's
        message = Message(headers, body, headers.get("persistent") == "true")
        if queue is not None:
            queue.put(message)
            return
        first = True
        for target in targets:
            if target.selector is not None and not target.selector.matches(headers):
                continue
            target.put(message if first else message.copy())
            first = False

    def _forget(self, seqs: set[int]) -> set[int]:
        """Drop the waiting messages whose row the store could not write, as their
        senders were refused and send them again; returns their numbers. What was
        delivered already, and dead letters (nobody sends those again), stay: their
        rows are written on a retry."""
        dropped: set[int] = set()
        for queue in list(self.queues.values()):
            if queue.stored and queue.ready and queue.dlq is not None:
                kept = deque(m for m in queue.ready if m.seq not in seqs)
                dropped.update(m.seq for m in queue.ready if m.seq in seqs)
                queue.ready = kept
                self.room(queue)
        return dropped

    def dead_letter(self, source: MessageQueue, message: Message, reason: str) -> None:
        source.remove(message)
        if source.dlq is None:
            log.warning("dropping %s from %s: %s", message.message_id, source.name, reason)
            return
        self.queue(source.dlq).put(message.copy())

    # -- subscriptions ----------------------------------------------------------------

    def subscribe(
        self,
        session: Consumer,
        sub_id: str,
        destination: str,
        ack_mode: str,
        prefetch: int,
        durable_name: str | None,
        owner: Owner | None = None,
        selector: Selector | None = None,
    ) -> Subscription:
        if destination.startswith("/topic/") and len(destination) > len("/topic/"):
            dlq = "/queue/DLQ." + destination[7:]
            if durable_name is not None:
                queue = self._durable_queue(durable_name, destination, dlq, selector=selector)
                if queue.consumers:
                    raise DestinationError(
                        f"durable subscription {durable_name!r} is already in use by another "
                        "connection; use another subscription name or client-id"
                    )
                if _text(queue.selector) != _text(selector):
                    # Kept with the subscription: while its subscriber is away, and
                    # across restarts, the queue takes only what the selector selects.
                    self.store.add_durable(durable_name, destination, _text(selector))
            else:
                self._temp += 1
                queue = MessageQueue(
                    self, f"subscription:{self._temp}", stored=False, dlq=dlq, drop_oldest=True
                )
                self.topics.setdefault(destination, []).append(queue)
            queue.selector = selector
        else:
            queue = self.client_queue(destination, owner, subscribing=True)
        sub = Subscription(
            session,
            sub_id,
            queue,
            ack_mode,
            prefetch,
            durable=durable_name is not None,
            # On a topic the subscription's own queue selects; on a queue, its consumer.
            selector=None if destination.startswith("/topic/") else selector,
        )
        queue.consumers.append(sub)
        return sub

    def _durable_queue(
        self,
        name: str,
        topic: str,
        dlq: str | None,
        *,
        selector: Selector | None = None,
        recovered: bool = False,
    ) -> MessageQueue:
        queue = self.queues.get(name)
        if queue is None:
            queue = self.queues[name] = MessageQueue(self, name, stored=True, dlq=dlq)
            self._control += self.gate.is_reserved(name)
            queue.selector = selector
            self.topics.setdefault(topic, []).append(queue)
            if not recovered:  # a recovered one is in the store already
                self.store.add_durable(name, topic, _text(selector))
        return queue

    def unsubscribe(self, sub: Subscription, *, destroy: bool = False) -> None:
        """Detach ``sub``; its unacked messages are redelivered to the others."""
        queue = sub.queue
        queue.consumers.remove(sub)
        queue.requeue(sub.release())
        if (queue.drop_oldest and not sub.durable) or (sub.durable and destroy):
            self._drop_queue(queue)
        else:
            queue.dispatch()

    def remove_durable(self, name: str) -> None:
        queue = self.queues.get(name)
        if queue is None or not name.startswith("durable:"):
            raise DestinationError(f"no durable subscription {name!r} to remove")
        if queue.consumers:
            raise DestinationError(f"durable subscription {name!r} is in use; unsubscribe it first")
        self._drop_queue(queue)

    def _drop_queue(self, queue: MessageQueue) -> None:
        for targets in self.topics.values():
            if queue in targets:
                targets.remove(queue)
        if self.queues.get(queue.name) is queue:
            del self.queues[queue.name]
            self._control -= self.gate.is_reserved(queue.name)
            self.gate.dropped(queue.creator)
            if queue.name.startswith("durable:"):
                self.store.remove_durable(queue.name)
        queue.ready.clear()
        self.room(queue)

    def ack(self, sub: Subscription, messages: list[Message]) -> None:
        for message in messages:
            sub.queue.remove(message)
        sub.queue.dispatch()

    def nack(self, sub: Subscription, messages: list[Message]) -> None:
        for message in messages:
            self.dead_letter(sub.queue, message, "rejected by NACK")
        sub.queue.dispatch()

    # -- recovery ---------------------------------------------------------------------

    def recover(self, durables: list[DurableRecord], messages: list[StoredMessage]) -> None:
        """Rebuild durable subscriptions and stored messages after a restart."""
        for record in durables:
            dlq = "/queue/DLQ." + record.topic[7:]
            selector = None
            if record.selector is not None:
                try:
                    selector = Selector.parse(record.selector)
                except InvalidSelector as exc:  # stored once parsed: a grammar change
                    # Everything rather than nothing: extra messages, none lost.
                    log.error("durable subscription %s: %s; it selects all", record.queue, exc)
            self._durable_queue(record.queue, record.topic, dlq, selector=selector, recovered=True)
        for stored in messages:
            queue = self.queues.get(stored.queue)
            if queue is None:
                queue = self.queue(stored.queue) if stored.queue.startswith("/queue/") else None
            if queue is None:
                self.store.delete(stored.seq)
                continue
            queue.ready.append(
                Message(
                    stored.headers,
                    stored.body,
                    True,
                    redeliveries=stored.redeliveries,
                    seq=stored.seq,
                )
            )

    def depths(self) -> dict[str, int]:
        # list(): a metrics scrape calls this from another thread.
        return {name: queue.depth() for name, queue in list(self.queues.items())}
