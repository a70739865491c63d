"""One client connection: STOMP protocol handling on an asyncio ``Protocol``.

Bytes go through the shared sans-IO parser; each frame is handled synchronously.
Output is collected per session and written with one ``transport.write`` per loop
iteration. A protocol error earns an ERROR frame, after which the connection is
closed, as the STOMP specification requires.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from typing import Protocol

from msgbus import __version__
from msgbus.broker.auth import AccessDenied, Gatekeeper, LimitExceeded, Owner, QueueFull
from msgbus.broker.config import BrokerConfig
from msgbus.broker.destinations import ACK_MODES, DestinationError, Router, Subscription
from msgbus.broker.flow import STORE, FlowControl, StoreBusy
from msgbus.broker.message import Message
from msgbus.broker.selector import InvalidSelector, Selector
from msgbus.broker.store import MessageStore
from msgbus.broker.transactions import Transactions
from msgbus.errors import FrameTooLarge, LocalProtocolError, RemoteProtocolError
from msgbus.permissions import Action
from msgbus.stomp import SUPPORTED_VERSIONS, HeartBeats, StompSession, Version, serialize
from msgbus.stomp.frames import TRANSIENT_HEADER, ErrorFrame, Frame, Heartbeat, ReceiptFrame

__all__ = ["Broker", "Session"]

log = logging.getLogger("msgbus.broker")

# Beyond this much unflushed output a session takes no more messages until it drains.
_OUT_HIGH = 256 * 1024
# Persistent SENDs of one read (or one turn once held) while others wait for the store:
# then this connection waits too, at the back (fair reading across connections).
_TURN = 8
_ERROR_LINGER = 2.0
"""Seconds a connection failed with ERROR keeps reading before it closes."""
# Headers a SEND carries that concern only that frame, not the message.
_NOT_FORWARDED = ("receipt", "transaction", "content-length", "subscription", "ack", "redelivered")
_session_ids = itertools.count(1)


class Refused(Exception):
    """The client's frame cannot be honoured; the text goes into the ERROR frame."""

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.headers = headers or {}


class Broker(Protocol):
    """What a session uses of the broker running it (``EmbeddedBroker``), typed here so
    that the session does not import the server that imports it."""

    @property
    def config(self) -> BrokerConfig: ...
    @property
    def id_prefix(self) -> str: ...
    @property
    def gate(self) -> Gatekeeper: ...
    @property
    def router(self) -> Router: ...
    @property
    def store(self) -> MessageStore: ...
    @property
    def sessions(self) -> set[Session]: ...


class Session(Transactions, asyncio.Protocol):
    """The broker side of one STOMP connection."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.router = broker.router
        config = broker.config
        self._heartbeat_ms = config.heartbeat_ms
        self._default_prefetch = config.default_prefetch
        self.stomp = StompSession("server", limits=config.limits.frame_limits())
        self.id = f"{broker.id_prefix}session-{next(_session_ids)}"
        self.writable = False
        self.owner: Owner | None = None  # set at login
        self.client_id: str | None = None
        self.subs: dict[str, Subscription] = {}
        self.transactions: dict[str, list[Frame]] = {}
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._out: list[bytes] = []
        self._out_bytes = 0
        self._flush_pending = False
        self._paused = False
        self._closing = False  # no more frames are read
        self._failed = False  # an ERROR went out
        self._logged_in = False
        self._receipts_waiting = 0
        self._turn = 0  # persistent SENDs in this _handle
        self._last_write = self._loop.time()
        self._heard_since_check = False
        self._timers: list[asyncio.TimerHandle] = []
        self.flow = FlowControl(
            self.router.blocked,
            config.limits.flow_control_wait,
            handle=self._handle,
            feed=self.data_received,
            refuse=lambda frame, title, why: self.fail(
                title, why, frame=frame, headers={TRANSIENT_HEADER: "true"}
            ),
        )
        self._beat: asyncio.TimerHandle | None = None

    @property
    def version(self) -> Version:
        """The agreed STOMP version ("1.0", nothing escaped, until CONNECT is answered)."""
        return self.stomp.version

    # -- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        # asyncio's 64 KiB default pauses a fast consumer every few dozen messages.
        transport.set_write_buffer_limits(high=_OUT_HIGH * 2)
        # Until it logs in, a socket only holds one of the few waiting places.
        evicted = self.broker.gate.admit_pending(self)
        if evicted is not None:
            evicted.evict()
        self.broker.sessions.add(self)
        self.writable = True
        self._timers.append(
            self._loop.call_later(self.broker.config.connect_timeout, self._connect_timeout)
        )

    def evict(self) -> None:
        """Make room for a newer socket: this one has not logged in yet."""
        self.fail(
            "no CONNECT in time",
            f"more than {self.broker.config.limits.max_pending_connections} connections were "
            "waiting to log in and this was the oldest; send CONNECT right after connecting",
        )

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        self._heard_since_check = True
        if self.flow.holding:  # read before the pause took effect
            self.flow.keep(data)
            return
        try:
            events = self.stomp.receive_data(data)
        except FrameTooLarge as exc:
            self._handle(self.stomp.parser.before_failure)
            # The receipt names the refused message, so a publisher can report it and
            # send the others instead of retrying it forever.
            self.fail("frame too large", str(exc), receipt=exc.headers.get("receipt"))
            return
        except RemoteProtocolError as exc:
            self._handle(self.stomp.parser.before_failure)
            self.fail("malformed frame", str(exc))
            return
        self._handle(events)

    def _handle(self, events: list[Frame | Heartbeat]) -> None:
        handlers = _HANDLERS
        self._turn = 0
        for index, event in enumerate(events):
            if not isinstance(event, Frame):
                continue  # a heart-beat
            try:
                if not self.stomp.connected:
                    self.stomp.check_order(event)
                handlers[event.command](self, event)
            except QueueFull as exc:
                assert self._transport is not None
                self.flow.hold(events[index:], exc, self._transport)
                return
            except RemoteProtocolError as exc:  # a rule of the protocol, broken by the client
                self.fail(str(exc), frame=event)
            except Refused as exc:
                self.fail(str(exc), frame=event, headers=exc.headers)
            except DestinationError as exc:
                self.fail(str(exc), frame=event)
            except LimitExceeded as exc:
                self.fail("limit exceeded", str(exc), frame=event)
            except AccessDenied as exc:
                self.fail("access refused", str(exc), frame=event)
            except Exception:  # a bug must cost one connection, not the broker
                log.exception("internal error handling %s from %s", event.command, self.id)
                self.fail("internal broker error", frame=event)
            if self._closing:
                return

    def pause_writing(self) -> None:
        self._paused = True
        self.writable = False

    def resume_writing(self) -> None:
        self._paused = False
        if self._out_bytes < _OUT_HIGH:
            self._become_writable()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self.writable = False
        for timer in self._timers:
            timer.cancel()
        self.flow.stop()
        if self._beat is not None:
            self._beat.cancel()
        # Unacked messages go back to their queues for the remaining consumers.
        for sub in self.subs.values():
            self.router.unsubscribe(sub)
        self.subs.clear()
        self.transactions.clear()
        self._out.clear()
        self.broker.gate.release(self, logged_in=self._logged_in)
        self._logged_in = False
        self.broker.sessions.discard(self)
        self._transport = None

    # -- output -----------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        self._out.append(data)
        self._out_bytes += len(data)
        self._last_write = self._loop.time()
        if self._out_bytes > _OUT_HIGH:
            self.writable = False
        if not self._flush_pending:
            self._flush_pending = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_pending = False
        if not self._out or self._transport is None:
            return
        data = b"".join(self._out)
        self._out.clear()
        self._out_bytes = 0
        self._transport.write(data)  # may call pause_writing() right away
        if not self.writable and not self._paused and not self._closing:
            self._become_writable()

    def _become_writable(self) -> None:
        self.writable = True
        for sub in list(self.subs.values()):
            sub.queue.dispatch()

    def close(self) -> None:
        """Write what is pending, then close the connection."""
        if self._transport is None:
            return
        self._closing = True
        self.writable = False
        self._flush()
        if self._transport is not None:
            self._transport.close()

    def fail(
        self,
        message: str,
        detail: str = "",
        frame: Frame | None = None,
        headers: dict[str, str] | None = None,
        receipt: str | None = None,
    ) -> None:
        """Send ERROR (with the receipt-id of ``frame``, or ``receipt``) and close; the
        receipts owed for frames before it go first."""
        if self._failed or self._transport is None:
            return
        self._failed = True
        self._closing = True  # the frames after this one are not honoured
        self.flow.stop()
        headers = {
            "message": message.replace("\n", " ")[:200],
            "content-type": "text/plain",
            **(headers or {}),
        }
        if frame is not None and "receipt" in frame.headers:
            receipt = frame.headers["receipt"]
        if receipt is not None:
            headers["receipt-id"] = receipt
        body = (detail or message).encode("utf-8", "replace") + b"\n"
        error = self._encode(ErrorFrame(headers, body))
        log.info("closing %s after ERROR: %s %s", self.id, message, detail)
        if self._receipts_waiting:
            # Messages stored before the refused frame are confirmed, not left for the
            # client to count as refused and send again.
            self.broker.store.when_durable(lambda ok: self._error_out(error))
        else:
            self._error_out(error)

    def _error_out(self, error: bytes) -> None:
        if self._transport is None:
            return
        self.write(error)
        self._close_after_error()

    def _close_after_error(self) -> None:
        """Close our side at once but read (and drop) what the client still sends for a
        moment: closing with unread input resets the connection, and the reset would
        destroy the ERROR before the client reads it."""
        transport = self._transport
        if transport is None or not transport.can_write_eof():
            self.close()
            return
        transport.resume_reading()  # to read and drop what flow control held back
        self._closing = True
        self.writable = False
        self._flush()
        try:
            transport.write_eof()
        except OSError:  # the client is gone (reset while it was held, not read): done
            transport.close()
            return
        self._timers.append(self._loop.call_later(_ERROR_LINGER, transport.close))

    def _encode(self, frame: Frame) -> bytes:
        try:
            return serialize(frame, self.version)
        except LocalProtocolError:
            # A client-chosen receipt id the version cannot carry: answer without it.
            frame.headers.pop("receipt-id", None)
            return serialize(frame, self.version)

    def _receipt(self, frame: Frame, durable: bool, then: Callable[[], None] | None = None) -> None:
        """Answer ``frame``'s receipt header; ``durable``: only once the store committed."""
        receipt_id = frame.headers.get("receipt")
        if receipt_id is None:
            if then is not None:
                then()
            return
        data = self._encode(ReceiptFrame({"receipt-id": receipt_id}))
        # Receipts keep their order: once one waits for the disk, later ones queue behind.
        if durable or self._receipts_waiting:
            self._receipts_waiting += 1
            self.broker.store.when_durable(lambda ok: self._release(data, ok, frame, then))
        else:
            self.write(data)
            if then is not None:
                then()

    def _release(
        self, data: bytes, ok: bool, frame: Frame, then: Callable[[], None] | None
    ) -> None:
        self._receipts_waiting -= 1
        if self._transport is None:
            return
        if not ok:  # transient: the store retries by itself, the client sends again
            reason = self.broker.store.failure or "the broker store failed"
            self.fail(reason, reason, frame=frame, headers={TRANSIENT_HEADER: "true"})
            return
        self.write(data)
        if then is not None:
            then()

    # -- timers -----------------------------------------------------------------------

    def _connect_timeout(self) -> None:
        if not self.stomp.connected:
            self.fail("no CONNECT frame within the connect timeout")

    def _send_beat(self, every: float) -> None:
        """Beat when nothing went out for (nearly) ``every`` seconds, then wake when the
        next is due: the gap never exceeds the promised interval (CONNECTED or a MESSAGE
        just before a check does not push the beat after it to twice the interval)."""
        # Wake a twentieth of the interval early: a busy loop runs timers late, and the
        # beat must still come within the interval.
        early = every / 20
        idle = self._loop.time() - self._last_write
        if idle >= every - 2 * early:
            self.write(b"\n")
            idle = 0.0
        self._beat = self._loop.call_later(every - early - idle, self._send_beat, every)

    def _check_beat(self, window: float) -> None:
        if not self._heard_since_check and not self.flow.holding:  # held: not read
            self.fail(
                "heart-beat timeout",
                f"nothing received from the client for {window:.1f}s; send heart-beats "
                "as negotiated in CONNECT",
            )
            return
        self._heard_since_check = False
        self._timers.append(self._loop.call_later(window, self._check_beat, window))

    # -- frames -----------------------------------------------------------------------

    def on_connect(self, frame: Frame) -> None:
        stomp = self.stomp
        stomp.check_order(frame)
        try:
            stomp.common_version(frame)
        except RemoteProtocolError as exc:  # the spec asks to name the versions we speak
            raise Refused(str(exc), {"version": ",".join(SUPPORTED_VERSIONS)}) from None
        headers = frame.headers
        gate = self.broker.gate
        peer = self._transport.get_extra_info("peername") if self._transport else None
        owner = gate.authenticate(
            headers.get("login"), headers.get("passcode"), peer[0] if peer else "unknown"
        )
        if owner is None:
            raise Refused("access refused: unknown login or wrong passcode")
        sx, sy = self._heartbeat_ms
        connected = stomp.accept(
            frame,
            heartbeats=HeartBeats(send_ms=sx, receive_ms=sy),
            headers={"server": f"msgbus/{__version__}", "session": self.id},
        )
        try:
            gate.log_in(self)
        except LimitExceeded as exc:
            raise Refused(f"connection limit reached: {exc}") from None
        self._logged_in = True
        self.owner = owner
        self.client_id = frame.headers.get("client-id")
        self.write(self._encode(connected))
        if stomp.send_interval:
            self._send_beat(stomp.send_interval)  # CONNECTED just went: schedules the first
        if stomp.receive_interval:
            # Twice the agreed interval: network jitter must not cost the connection.
            window = 2 * stomp.receive_interval
            self._timers.append(self._loop.call_later(window, self._check_beat, window))
        self._receipt(frame, durable=False)

    def on_send(self, frame: Frame) -> None:
        headers = frame.headers
        destination = headers.get("destination")
        if not destination:
            raise Refused("SEND without a destination header")
        owner = self.owner
        assert owner is not None  # frames before CONNECT are refused
        if self.broker.gate.policy is not None:
            self._authorize(owner, "write", destination)
        if "transaction" in headers and self._in_transaction(frame):
            return
        if headers.get("persistent") == "true":
            self._check_store()
        self._route(frame)
        if "receipt" in headers:
            self._receipt(frame, durable=headers.get("persistent") == "true")

    def _route(self, frame: Frame, *, admitted: bool = False) -> None:
        message_headers = frame.headers.copy()
        for name in _NOT_FORWARDED:  # cheaper than filtering every header
            message_headers.pop(name, None)
        destination = message_headers["destination"]
        self.router.send(destination, message_headers, frame.body, self.owner, admitted=admitted)

    def on_subscribe(self, frame: Frame) -> None:
        headers = frame.headers
        destination = headers.get("destination")
        if not destination:
            raise Refused("SUBSCRIBE without a destination header")
        sub_id = headers.get("id") or (destination if self.version == "1.0" else None)
        if sub_id is None:
            raise Refused("SUBSCRIBE without an id header (required since STOMP 1.1)")
        if sub_id in self.subs:
            raise Refused(f"subscription id {sub_id!r} is already in use on this connection")
        ack_mode = headers.get("ack", "auto")
        if ack_mode not in ACK_MODES:
            raise Refused(f"ack mode {ack_mode!r} is not one of {', '.join(ACK_MODES)}")
        raw = headers.get("activemq.prefetchSize") or headers.get("prefetch-count")
        try:
            prefetch = int(raw) if raw is not None else self._default_prefetch
        except ValueError:
            raise Refused(f"prefetch size {raw!r} is not an integer") from None
        if prefetch < 1:
            raise Refused("prefetch size must be at least 1")
        self.broker.gate.check_subscriptions(len(self.subs))
        selector = None
        if headers.get("selector"):
            try:
                selector = Selector.parse(headers["selector"])
            except InvalidSelector as exc:
                raise Refused(
                    f"invalid selector {headers['selector'][:80]!r}: {exc}; "
                    "fix it (ActiveMQ's JMS selector syntax) and subscribe again"
                ) from None
        owner = self.owner
        assert owner is not None  # frames before CONNECT are refused
        if self.broker.gate.policy is not None:
            self._authorize(owner, "read", destination)
        durable_name = None
        if destination.startswith("/topic/"):
            durable_name = self._durable_name(headers, sub_id)
        sub = self.subs[sub_id] = self.router.subscribe(
            self, sub_id, destination, ack_mode, prefetch, durable_name, owner, selector
        )
        # A durable subscription is confirmed once on disk: a consumer told it exists
        # must not lose what is published after a crash of the broker. The backlog
        # follows the RECEIPT, as ActiveMQ sends it: clients such as Net::Stomp take the
        # next frame after a SUBSCRIBE for its receipt.
        self._receipt(frame, durable=durable_name is not None, then=sub.queue.dispatch)

    def _authorize(self, owner: Owner, action: Action, destination: str) -> None:
        gate = self.broker.gate
        gate.authorize(owner, action, destination)
        # Creating a queue is ActiveMQ's "admin" right; topics here hold nothing to create.
        if destination.startswith("/queue/") and destination not in self.router.queues:
            gate.authorize(owner, "admin", destination)

    def _durable_name(self, headers: dict[str, str], sub_id: str) -> str | None:
        name = headers.get("activemq.subscriptionName")
        if name is not None:  # the ActiveMQ form
            if not self.client_id:
                raise Refused(
                    "a durable subscription (activemq.subscriptionName) needs a client-id "
                    "header in CONNECT"
                )
            return f"durable:{self.client_id}:{name}"
        if "true" in (headers.get("durable"), headers.get("persistent")):  # the RabbitMQ form
            return f"durable::{sub_id}"
        return None

    def on_unsubscribe(self, frame: Frame) -> None:
        headers = frame.headers
        sub_id = headers.get("id")
        if sub_id is None and self.version == "1.0":
            sub_id = headers.get("destination")
        sub = self.subs.pop(sub_id or "", None)
        durable_name = self._durable_name(headers, sub_id or "")
        if sub is not None:
            self.router.unsubscribe(sub, destroy=durable_name is not None)
        elif durable_name is not None:
            # Removing an inactive durable subscription from a later connection.
            self.router.remove_durable(durable_name)
        else:
            raise Refused(f"UNSUBSCRIBE: no subscription with id {sub_id!r} on this connection")
        self._receipt(frame, durable=False)

    def _acked(self, frame: Frame) -> tuple[Subscription, list[Message]]:
        headers = frame.headers
        ack_id = self.stomp.acked_id(frame, self.version)
        named = headers.get("subscription")
        chosen = self.subs.get(named) if named is not None else None
        candidates = [chosen] if chosen is not None else list(self.subs.values())
        for sub in candidates:
            messages = sub.take_acked(ack_id)
            if messages:
                return sub, messages
        raise Refused(f"{frame.command} for {ack_id!r}, which is not an unacknowledged message")

    def on_ack(self, frame: Frame) -> None:
        if self._in_transaction(frame):
            return
        sub, messages = self._acked(frame)
        self.router.ack(sub, messages)
        self._receipt(frame, durable=False)

    def on_nack(self, frame: Frame) -> None:
        if self.version == "1.0":
            raise Refused("NACK does not exist in STOMP 1.0")
        if self._in_transaction(frame):
            return
        sub, messages = self._acked(frame)
        self.router.nack(sub, messages)
        self._receipt(frame, durable=False)

    def _check_store(self) -> None:
        """Refuse a persistent message transiently while the store cannot write; hold
        it while the store is behind (flow control)."""
        store = self.broker.store
        if store.failure is not None:
            raise Refused(store.failure, {TRANSIENT_HEADER: "true"})
        self._turn += 1
        if store.busy or (self._turn > _TURN and STORE in self.router.blocked):
            raise StoreBusy(store.unwritten)

    def on_disconnect(self, frame: Frame) -> None:
        self._closing = True  # read nothing more; the receipt still goes out
        self._receipt(frame, durable=False, then=self.close)


_HANDLERS: dict[str, Callable[[Session, Frame], None]] = {
    "CONNECT": Session.on_connect,
    "STOMP": Session.on_connect,
    "SEND": Session.on_send,
    "SUBSCRIBE": Session.on_subscribe,
    "UNSUBSCRIBE": Session.on_unsubscribe,
    "ACK": Session.on_ack,
    "NACK": Session.on_nack,
    "BEGIN": Session.on_begin,
    "COMMIT": Session.on_commit,
    "ABORT": Session.on_abort,
    "DISCONNECT": Session.on_disconnect,
}
