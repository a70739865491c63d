"""The gateway's broker side, without HTTP: AMS topics, subscriptions, publish, pull,
acknowledge, mapped onto STOMP.

* An AMS topic ``T`` is the STOMP topic ``<topic_prefix>T``; publishing goes through
  :class:`msgbus.Publisher` without a spool and answers only once the broker confirmed
  every message (a transaction with a receipt).
* An AMS subscription is a durable STOMP subscription on that topic, held by one
  connection of the gateway with client-individual ACKs. A pulled message stays
  unacknowledged at the broker until ``:acknowledge``; when its ack deadline passes the
  next pull hands it out again under a new ackId, and when the gateway dies the broker
  redelivers it. Nothing is acknowledged to the broker before the AMS client did.
* With ``gateway.permissions``, each user's groups are checked on the STOMP destination
  of the topic, as the embedded broker checks them: ``write`` to publish, ``read`` to
  subscribe, pull, acknowledge (and delete a subscription), ``admin`` to create or delete
  a topic; a refusal is a 403 before anything reaches the broker. Without permissions
  every user may do everything. Reading what exists (get, list) is open to every user.
* Topics and subscriptions (names, topic, deadline) are kept in ``state_dir`` so a
  restarted gateway serves the same ones; their messages live in the broker.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from msgbus.config import MsgbusConfig
from msgbus.consume.subscription import Subscription
from msgbus.errors import MsgbusError
from msgbus.permissions import AccessPolicy, Action
from msgbus.publish import Envelope, Publisher
from msgbus.schema import decode_body
from msgbus.stomp.frames import MessageFrame
from msgbus.stomp.headers import ID_HEADER, SYNC_HEADER
from msgbus.transport.connection import Connection
from msgbus.transport.failover import connect_first

__all__ = ["AmsError", "Gateway", "Pulled"]

# STOMP and msgbus headers an attribute may not set, and that pulls do not return.
_RESERVED = frozenset(
    {
        "destination", "content-length", "receipt", "transaction", "message-id",
        "subscription", "ack", "timestamp", "expires", "priority", "persistent",
        "redelivered", "correlation-id", "reply-to", "type",
    }
)  # fmt: skip
_PULL_WAIT = 5.0
"""Seconds a pull without returnImmediately waits for a first message."""
_PREFETCH = 1000
_DOING: dict[Action, str] = {
    "read": "read from",
    "write": "publish to",
    "admin": "create or delete",
}


class AmsError(MsgbusError):
    """An AMS error answer: HTTP ``code``, AMS ``status`` word and the message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code

    @property
    def status(self) -> str:
        return {
            400: "INVALID_ARGUMENT",
            401: "UNAUTHORIZED",
            403: "FORBIDDEN",
            404: "NOT_FOUND",
            408: "TIMEOUT",
            409: "ALREADY_EXISTS",
            413: "MESSAGE_TOO_LARGE",
        }.get(self.code, "UNAVAILABLE")

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": str(self), "status": self.status}}


@dataclass(slots=True)
class Pulled:
    """One message handed out by a pull, until acknowledged or its deadline passes."""

    frame: MessageFrame
    deadline: float


@dataclass
class _Sub:
    name: str
    topic: str
    ack_deadline: int
    conn: Connection | None = None
    outstanding: dict[str, Pulled] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Gateway:
    """Thread-safe: HTTP requests call it from a pool of threads."""

    def __init__(self, config: MsgbusConfig) -> None:
        self.config = config
        self.settings = config.gateway
        self.project = self.settings.project
        self._state = Path(self.settings.state_dir) / "gateway.json"
        self._lock = threading.Lock()
        self._publisher = Publisher(config, spool=False)
        self._ack_ids = itertools.count(1)
        # No permissions: every user may do everything, as configs before them expect.
        self._policy = (
            AccessPolicy(self.settings.permissions) if self.settings.permissions else None
        )
        self._groups = {name: user.member_of() for name, user in self.settings.users.items()}
        self.topics: set[str] = set()
        self.subs: dict[str, _Sub] = {}
        self._load()

    def close(self) -> None:
        with self._lock:
            for sub in self.subs.values():
                if sub.conn is not None:
                    sub.conn.close()
            self._publisher.close()

    # -- names and state --------------------------------------------------------------

    def topic_name(self, topic: str) -> str:
        return f"/projects/{self.project}/topics/{topic}"

    def destination(self, topic: str) -> str:
        return f"{self.settings.topic_prefix}{topic}"

    def _load(self) -> None:
        if not self._state.exists():
            return
        data = json.loads(self._state.read_text())
        self.topics = set(data.get("topics", []))
        for name, sub in data.get("subscriptions", {}).items():
            self.subs[name] = _Sub(name, sub["topic"], int(sub["ackDeadlineSeconds"]))

    def _save(self) -> None:
        self._state.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "topics": sorted(self.topics),
            "subscriptions": {
                n: {"topic": s.topic, "ackDeadlineSeconds": s.ack_deadline}
                for n, s in self.subs.items()
            },
        }
        tmp = self._state.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(self._state)  # never a half-written state file

    def authorize(self, user: str, action: Action, topic: str) -> None:
        """A 403 unless ``user``'s groups may ``action`` the destination of ``topic``."""
        if self._policy is None:
            return
        destination = self.destination(topic)
        if not self._policy.allows(self._groups.get(user, frozenset()), action, destination):
            raise AmsError(
                403,
                f"Access to this resource is forbidden: user {user} may not "
                f"{_DOING[action]} topic {topic} ({destination}); it needs {action} "
                "permission there (gateway.permissions)",
            )

    # -- topics -----------------------------------------------------------------------

    def create_topic(self, user: str, topic: str) -> dict[str, Any]:
        self.authorize(user, "admin", topic)
        with self._lock:
            if topic in self.topics:
                raise AmsError(409, "Topic already exists")
            self.topics.add(topic)
            self._save()
        return {"name": self.topic_name(topic)}

    def get_topic(self, topic: str) -> dict[str, Any]:
        self._topic(topic)
        return {"name": self.topic_name(topic)}

    def delete_topic(self, user: str, topic: str) -> None:
        self.authorize(user, "admin", topic)
        with self._lock:
            self._topic(topic)
            self.topics.discard(topic)
            self._save()

    def list_topics(self) -> dict[str, Any]:
        return {"topics": [{"name": self.topic_name(t)} for t in sorted(self.topics)]}

    def _topic(self, topic: str) -> None:
        if topic not in self.topics:
            raise AmsError(404, "Topic doesn't exist")

    def publish(self, user: str, topic: str, messages: Sequence[Mapping[str, Any]]) -> list[str]:
        """Validate every message, send them all and return their ids once the broker
        confirmed every one; nothing is sent when one is invalid."""
        self.authorize(user, "write", topic)
        self._topic(topic)
        if not messages:
            raise AmsError(400, "Invalid Message Arguments: no messages")
        envelopes = [
            Envelope(self.destination(topic), *self._checked(number, message))
            for number, message in enumerate(messages, 1)
        ]
        with self._lock:  # the Publisher is used from one thread at a time
            report = self._publisher.send(envelopes)
        if report.confirmed != len(envelopes):
            why = report.error or "; ".join(report.rejected) or "not confirmed"
            raise AmsError(503, f"the broker did not confirm the messages: {why}")
        return [env.msgbus_id for env in envelopes]

    def _checked(self, number: int, message: Mapping[str, Any]) -> tuple[bytes, dict[str, str]]:
        attributes = message.get("attributes") or {}
        if not isinstance(attributes, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in attributes.items()
        ):
            raise AmsError(400, f"message {number}: attributes must map strings to strings")
        bad = sorted(k for k in attributes if k.lower() in _RESERVED or k.startswith("msgbus-"))
        if bad:
            raise AmsError(400, f"message {number}: attribute(s) {', '.join(bad)} are reserved")
        data = message.get("data")
        if not isinstance(data, str):
            raise AmsError(400, f"message {number}: data must be a base64 string")
        try:
            body = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise AmsError(400, f"message {number}: data is not valid base64") from None
        if self.settings.validate_bodies:
            problems = [r.reason for r in decode_body(body, attributes) if r.message is None]
            if problems:
                raise AmsError(400, f"message {number}: {'; '.join(problems)}")
        return body, dict(attributes)

    # -- subscriptions ----------------------------------------------------------------

    def create_sub(
        self, user: str, name: str, topic_path: str, ack_deadline: int | None
    ) -> dict[str, Any]:
        topic = topic_path.strip("/").rsplit("/", 1)[-1]
        expected = f"projects/{self.project}/topics/{topic}"
        if topic_path.strip("/") != expected:
            raise AmsError(400, f"topic must be {expected}")
        self.authorize(user, "read", topic)
        deadline = ack_deadline if ack_deadline is not None else self.settings.ack_deadline
        if not 1 <= deadline <= 600:
            raise AmsError(400, "ackDeadlineSeconds must be between 1 and 600")
        with self._lock:
            self._topic(topic)
            if name in self.subs:
                raise AmsError(409, "Subscription already exists")
            sub = _Sub(name, topic, deadline)
            self._connect(sub)  # the durable subscription keeps what is published next
            self.subs[name] = sub
            self._save()
        return self._describe(sub)

    def get_sub(self, name: str) -> dict[str, Any]:
        return self._describe(self._sub(name))

    def list_subs(self) -> dict[str, Any]:
        with self._lock:
            return {"subscriptions": [self._describe(s) for s in self.subs.values()]}

    def delete_sub(self, user: str, name: str) -> None:
        with self._lock:
            sub = self._sub(name)
            self.authorize(user, "read", sub.topic)
            with sub.lock:
                conn = self._connect(sub)
                self._stomp_sub(sub).remove(conn, subscribed=True)
                conn.close()
                sub.conn = None
            del self.subs[name]
            self._save()

    def modify_ack_deadline(self, user: str, name: str, seconds: int) -> None:
        if not 1 <= seconds <= 600:
            raise AmsError(400, "ackDeadlineSeconds must be between 1 and 600")
        with self._lock:
            sub = self._sub(name)
            self.authorize(user, "read", sub.topic)
            sub.ack_deadline = seconds
            self._save()

    def _sub(self, name: str) -> _Sub:
        sub = self.subs.get(name)
        if sub is None:
            raise AmsError(404, "Subscription doesn't exist")
        return sub

    def _describe(self, sub: _Sub) -> dict[str, Any]:
        return {
            "name": f"/projects/{self.project}/subscriptions/{sub.name}",
            "topic": self.topic_name(sub.topic),
            "pushConfig": {"pushEndpoint": "", "retryPolicy": {}},
            "ackDeadlineSeconds": sub.ack_deadline,
        }

    def _stomp_sub(self, sub: _Sub) -> Subscription:
        return Subscription(self.destination(sub.topic), f"gateway.{self.project}.{sub.name}")

    def _connect(self, sub: _Sub) -> Connection:
        """The subscription's connection, (re)made when lost; what was handed out and
        not acknowledged goes back to the broker with the old connection."""
        if sub.conn is not None and sub.conn.connected:
            return sub.conn
        if sub.conn is not None:
            sub.conn.close()
            sub.outstanding.clear()
        stomp_sub = self._stomp_sub(sub)
        conn = connect_first(
            self.config.connection,
            client_id=stomp_sub.client_id(self.config.connection.client_id),
        )
        stomp_sub.subscribe(conn, _PREFETCH)
        sub.conn = conn
        return conn

    # -- pull and acknowledge ---------------------------------------------------------

    def pull(
        self, user: str, name: str, max_messages: int, return_immediately: bool
    ) -> list[dict[str, Any]]:
        sub = self._sub(name)
        self.authorize(user, "read", sub.topic)
        if max_messages < 1:
            raise AmsError(400, "maxMessages must be at least 1")
        with sub.lock:
            now = time.monotonic()
            out: list[tuple[str, MessageFrame]] = []
            # Handed out before, deadline passed: again, under a new ackId.
            for ack_id, pulled in list(sub.outstanding.items()):
                if len(out) < max_messages and pulled.deadline <= now:
                    del sub.outstanding[ack_id]
                    out.append((self._ack_id(sub), pulled.frame))
            conn = self._connect(sub)
            wait = 0.0 if return_immediately or out else _PULL_WAIT
            while len(out) < max_messages:
                frame = conn.receive(wait)
                if frame is None:
                    break
                if isinstance(frame, MessageFrame):
                    if SYNC_HEADER in frame.headers:
                        # A publisher's sync record is for consumers' ledgers, not AMS.
                        conn.ack([frame])
                        continue
                    out.append((self._ack_id(sub), frame))
                    wait = 0.0  # what is there already, no more waiting
            deadline = now + sub.ack_deadline
            for ack_id, frame in out:
                sub.outstanding[ack_id] = Pulled(frame, deadline)
        return [{"ackId": ack_id, "message": _message(frame)} for ack_id, frame in out]

    def acknowledge(self, user: str, name: str, ack_ids: Sequence[str]) -> None:
        sub = self._sub(name)
        self.authorize(user, "read", sub.topic)
        with sub.lock:
            # First: a connection made anew forgets what the old one handed out.
            conn = self._connect(sub)
            missing = [a for a in ack_ids if a not in sub.outstanding]
            if missing:
                # Expired (handed out again) or never given: AMS says so with a 408.
                raise AmsError(408, f"ack timeout: {', '.join(missing[:5])}")
            frames = [sub.outstanding.pop(a).frame for a in ack_ids]
            conn.ack(frames)

    def _ack_id(self, sub: _Sub) -> str:
        return f"projects/{self.project}/subscriptions/{sub.name}:{next(self._ack_ids)}"


def _message(frame: MessageFrame) -> dict[str, Any]:
    headers = frame.headers
    stamp = headers.get("timestamp", "")
    when = int(stamp) / 1000 if stamp.isdigit() else time.time()
    published = datetime.fromtimestamp(when, timezone.utc)
    attributes = {
        k: v for k, v in headers.items() if k not in _RESERVED and not k.startswith("msgbus-")
    }
    return {
        "messageId": headers.get(ID_HEADER) or headers.get("message-id", ""),
        "attributes": attributes,
        "data": base64.b64encode(frame.body).decode("ascii"),
        "publishTime": published.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }
