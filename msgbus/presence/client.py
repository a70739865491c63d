"""The requesting side of the control channel: ``msgbus ctl`` and ``msgbus status``.

A request goes to one component's queue or to a broadcast topic, with ``reply-to``
naming this client's reply queue (``control.reply_prefix``, a temporary queue by
default) and ``correlation-id`` the request id; replies are gathered until the
timeout (or the first reply, for a request to one name).
"""

from __future__ import annotations

import getpass
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from msgbus.config import MsgbusConfig
from msgbus.errors import BrokerError, ControlError
from msgbus.presence.auth import sign
from msgbus.presence.messages import (
    CONTENT_TYPE,
    SIGNATURE_HEADER,
    Announcement,
    ControlReply,
    ControlRequest,
    Destinations,
    Target,
    parse,
)
from msgbus.stomp.frames import ErrorFrame, MessageFrame
from msgbus.transport.connection import Connection, broker_error
from msgbus.transport.failover import connect_first

__all__ = ["ControlClient", "Gathered"]

log = logging.getLogger(__name__)

_REPLIES = "replies"
_PRESENCE = "presence"


@dataclass
class Gathered:
    """What came back within a wait: replies to our request(s) and announcements."""

    replies: list[ControlReply] = field(default_factory=list)
    announcements: list[Announcement] = field(default_factory=list)
    # Both, in arrival order, with the wall-clock time each arrived.
    received: list[tuple[float, Announcement | ControlReply]] = field(default_factory=list)


class ControlClient:
    """One connection for sending commands and listening to presence."""

    def __init__(self, config: MsgbusConfig, *, user: str | None = None) -> None:
        control = config.control
        self.config = config
        self.user = user or control.user or config.connection.login or getpass.getuser()
        secret = control.secrets.get(self.user)
        self._secret = secret.get_secret_value() if secret is not None else None
        self._dest = Destinations(control.prefix)
        self._reply_to = ""
        self._conn: Connection | None = None
        self._pending: set[str] = set()

    def __enter__(self) -> ControlClient:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> None:
        """Connect and subscribe to the reply queue.

        A broker without temporary queues (the embedded broker; RabbitMQ allows them
        only in ``reply-to``) refuses the subscription; the client then reconnects and
        uses an ordinary queue ``/queue/<prefix>.reply.<id>``, which such a broker may
        keep, empty, after the client left (the embedded broker and rendered networks
        reclaim them). On ActiveMQ that queue is the first choice unless
        ``control.reply_prefix`` is set: a network's bridges forward the control queues,
        so a reply finds its way back from any broker, which a temporary queue does not.
        """
        token = uuid.uuid4().hex[:12]
        control = self.config.control
        temporary = f"{control.reply_prefix}msgbus-reply-{token}"
        fallback = f"/queue/{control.prefix}.reply.{token}"
        candidates = [temporary]
        if not control.reply_prefix.startswith("/queue/"):
            candidates.append(fallback)
        for i, reply_to in enumerate(candidates):
            conn = connect_first(self.config.connection.without_client_id())
            chosen = "reply_prefix" in control.model_fields_set
            if conn.server.startswith("ActiveMQ/") and reply_to == temporary and not chosen:
                reply_to = fallback
            try:
                conn.subscribe(reply_to, id=_REPLIES)
            except BrokerError as exc:
                conn.close()
                if i + 1 == len(candidates):
                    raise ControlError(
                        f"cannot receive replies on {reply_to}: {exc}; set control.reply_prefix "
                        "to a destination prefix this broker accepts"
                    ) from None
                log.info("%s refused %s (%s); using %s", conn.url, reply_to, exc, fallback)
                continue
            except BaseException:
                conn.close()
                raise
            self._conn, self._reply_to = conn, reply_to
            return

    def close(self) -> None:
        if self._conn is not None:
            self._conn.disconnect()
            self._conn = None

    @property
    def reply_to(self) -> str:
        """Where this client's replies arrive (set by :meth:`connect`)."""
        return self._reply_to

    @property
    def connection(self) -> Connection:
        if self._conn is None:
            raise ControlError("the control client is not connected; call connect() first")
        return self._conn

    # -- requests -----------------------------------------------------------------

    def send(self, target: Target, command: str, args: Mapping[str, Any] | None = None) -> str:
        """Send one request; returns its id (the correlation-id of the replies)."""
        request = ControlRequest(
            command=command, args=dict(args or {}), sender=self.user, target=target
        )
        body = request.model_dump_json().encode()
        headers = {
            "reply-to": self._reply_to,
            "correlation-id": request.id,
            "content-type": CONTENT_TYPE,
        }
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = sign(body, self._secret)
        self.connection.send(target.destination(self._dest), body, headers)
        self._pending.add(request.id)
        return request.id

    def request(
        self,
        target: Target,
        command: str,
        args: Mapping[str, Any] | None = None,
        *,
        timeout: float,
    ) -> list[ControlReply]:
        """Send and gather replies: the first one for a name, all within ``timeout`` else."""
        self.send(target, command, args)
        gathered = self.gather(timeout, first_reply=target.scope == "name")
        return gathered.replies

    # -- listening ------------------------------------------------------------------

    def listen_presence(self) -> None:
        """Also gather announcements from ``control.presence_topic`` from now on."""
        self.connection.subscribe(self.config.control.presence_topic, id=_PRESENCE)

    def gather(self, timeout: float, *, first_reply: bool = False) -> Gathered:
        """Collect replies and announcements for ``timeout`` seconds."""
        out = Gathered()
        deadline = time.monotonic() + timeout
        conn = self.connection
        while (remaining := deadline - time.monotonic()) > 0:
            frame = conn.receive(remaining)
            if isinstance(frame, ErrorFrame):
                raise broker_error(conn.url, frame)
            if not isinstance(frame, MessageFrame):
                continue
            subscription = frame.headers.get("subscription")
            try:
                message = parse(frame.body)
            except ControlError as exc:
                log.warning("ignored a message on %s: %s", frame.headers.get("destination"), exc)
                continue
            if isinstance(message, Announcement) and subscription == _PRESENCE:
                out.announcements.append(message)
            elif isinstance(message, ControlReply) and message.request_id in self._pending:
                out.replies.append(message)
            else:
                continue
            out.received.append((time.time(), message))
            if first_reply and out.replies:
                break
        return out
