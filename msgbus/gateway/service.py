"""The gateway's broker side, without HTTP: AMS topics, subscriptions, publish, pull,
acknowledge, mapped onto STOMP.

* An AMS topic ``T`` is the STOMP topic ``<topic_prefix>T``; publishing goes through
  :class:`msgbus.Publisher` without a spool and answers only once the broker confirmed
  every message (a transaction with a receipt). As on AMS a message is any attributes
  (STOMP headers, :mod:`msgbus.gateway.attributes`) and any bytes; only a topic with a
  schema (:mod:`msgbus.gateway.schemas`) is validated, and a replayed request sends
  nothing twice (:mod:`msgbus.gateway.retries`).
* An AMS subscription is a durable STOMP subscription on that topic, held by one
  connection of the gateway with client-individual ACKs. A pulled message stays
  unacknowledged at the broker until ``:acknowledge`` (cumulative, as AMS's); when its
  ack deadline passes the next pull hands it out again under a new ackId, and when the
  gateway dies the broker redelivers it. Nothing is acknowledged to the broker before
  the AMS client did. A push subscription (``pushConfig``) is pushed by a
  :class:`~msgbus.gateway.push.Pusher` on that same connection instead, and cannot be
  pulled from until its push configuration is cleared.
* With ``gateway.permissions``, each user's groups are checked on the STOMP destination
  of the topic, as the embedded broker checks them: ``write`` to publish, ``read`` to
  subscribe, pull, acknowledge (and delete a subscription), ``admin`` to create or delete
  a topic, plus the users AMS's ACLs list (:mod:`msgbus.gateway.acl`); a refusal is a
  403 before anything reaches the broker. Without permissions
  every user may do everything. Reading what exists (get, list) is open to every user.
* Topics and subscriptions (names, topic, deadline, push configuration) are kept in
  ``state_dir`` so a restarted gateway serves the same ones; their messages live in the
  broker.
  With ``gateway.retention`` enabled, subscriptions read a retention log in ``state_dir``
  by offset instead, and can go back (:mod:`msgbus.gateway.replay`).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import ssl
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from msgbus.config import MsgbusConfig
from msgbus.consume.subscription import Subscription
from msgbus.gateway.acl import AclStore
from msgbus.gateway.amserror import AmsError
from msgbus.gateway.attributes import from_headers, to_headers
from msgbus.gateway.metrics import Counters
from msgbus.gateway.params import page
from msgbus.gateway.push import PushConfig, Pusher, PushState, parse_push_config, verify_endpoint
from msgbus.gateway.replay import LogCursor, Replay, receive
from msgbus.gateway.retries import RetryWindow
from msgbus.gateway.schemas import SchemaRegistry
from msgbus.permissions import AccessPolicy, Action
from msgbus.publish import Envelope, Publisher
from msgbus.stomp.frames import MessageFrame
from msgbus.stomp.headers import ID_HEADER
from msgbus.transport.connection import Connection
from msgbus.transport.failover import opener
from msgbus.transport.link import Link

__all__ = ["AmsError", "Gateway", "Pulled", "not_served"]

_PULL_WAIT = 0.3
"""Seconds a pull without returnImmediately waits for a first message in flight from the
broker: AMS answers such a pull at once when nothing is there (and waits 300 ms with
returnImmediately)."""
_SERVED = (
    "topics, publish, pull and push subscriptions, pull and acknowledge, schemas, ACLs, "
    "metrics, and reads the project and its users (gateway.users)"
)
_PREFETCH = 1000
_DOING: dict[Action, str] = {
    "read": "read from",
    "write": "publish to",
    "admin": "create or delete",
}


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
    link: Link[Connection] | None = None
    conn: Connection | LogCursor | None = None
    """The connection (or log cursor) of what is in ``outstanding``: a new one forgets them."""
    outstanding: dict[str, Pulled] = field(default_factory=dict)
    push: PushConfig | None = None
    pusher: Pusher | None = None
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
        state = Path(self.settings.state_dir)
        configured = {t: s.schema_ for t, s in self.settings.topics.items() if s.schema_}
        self.schemas = SchemaRegistry(self.project, state, configured)
        self.acl = AclStore(state)
        self.counters = Counters(state)
        self._retries = RetryWindow(self.settings.retry_window)
        self._tls = ssl.create_default_context(
            cafile=str(self.settings.push_ca) if self.settings.push_ca else None
        )
        self._load()
        retention = self.settings.retention.enabled
        self.replay = Replay(config, state, self.topics) if retention else None
        for sub in self.subs.values():
            self._start_push(sub)

    def close(self) -> None:
        with self._lock:
            pushers = [s.pusher for s in self.subs.values() if s.pusher is not None]
            for sub in self.subs.values():
                self._stop_push(sub)
                if sub.link is not None:
                    sub.link.close()
            self._publisher.close()
            if self.replay is not None:
                self.replay.close()
        for pusher in pushers:  # a POST in flight ends by the push timeout
            pusher.join(self.settings.push_timeout)
        self.counters.close()

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
            push = sub.get("push")
            self.subs[name] = _Sub(
                name,
                sub["topic"],
                int(sub["ackDeadlineSeconds"]),
                push=PushConfig(**push) if push else None,
            )

    def _save(self) -> None:
        self._state.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "topics": sorted(self.topics),
            "subscriptions": {
                n: {
                    "topic": s.topic,
                    "ackDeadlineSeconds": s.ack_deadline,
                    "push": s.push.state() if s.push else None,
                }
                for n, s in self.subs.items()
            },
        }
        tmp = self._state.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(self._state)  # never a half-written state file

    def authorize(self, user: str, action: Action, topic: str, sub: str | None = None) -> None:
        """A 403 unless ``user``'s groups may ``action`` the destination of ``topic``, or
        the ACL of the topic (write) or of subscription ``sub`` (read) lists the user."""
        if self._policy is None:
            return
        if (action == "write" and self.acl.grants(user, "topics", topic)) or (
            action == "read" and sub is not None and self.acl.grants(user, "subscriptions", sub)
        ):
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
            if self.replay is not None:
                self.replay.add_topic(topic)  # its log keeps what is published from now on
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
            if self.replay is not None:
                self.replay.forget_topic(topic)
            self.topics.discard(topic)
            self._save()

    def list_topics(self, page_size: int = 0, page_token: str = "") -> dict[str, Any]:
        with self._lock:
            topics = sorted(self.topics)
        names, next_token = page(topics, page_size, page_token)
        return {
            "topics": [{"name": self.topic_name(t)} for t in names],
            "nextPageToken": next_token,
            "totalSize": len(topics),
        }

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
        checked = [self._checked(topic, n, message) for n, message in enumerate(messages, 1)]
        destination = self.destination(topic)
        with self._lock:  # the Publisher is used from one thread at a time
            # A replayed request: the same ids, and nothing confirmed before sent again.
            seen = self._retries.assign(destination, checked)
            envelopes = [
                Envelope(destination, body, headers, msgbus_id=s.msgbus_id)
                for (body, headers), s in zip(checked, seen, strict=True)
                if not s.confirmed
            ]
            report = self._publisher.send(envelopes) if envelopes else None
        if report is not None and report.confirmed != len(envelopes):
            why = report.error or "; ".join(report.rejected) or "not confirmed"
            raise AmsError(503, f"the broker did not confirm the messages: {why}")
        self._retries.confirmed(seen)
        return [s.msgbus_id for s in seen]

    def _checked(
        self, topic: str, number: int, message: Mapping[str, Any]
    ) -> tuple[bytes, dict[str, str]]:
        """The body and STOMP headers of one message: any attributes and any bytes, as
        AMS takes them, unless the topic has a schema (``gateway.topics``)."""
        attributes = message.get("attributes") or {}
        if not isinstance(attributes, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in attributes.items()
        ):
            raise AmsError(400, f"message {number}: attributes must map strings to strings")
        data = message.get("data") or ""  # AMS takes a message of attributes alone
        if not isinstance(data, str):
            raise AmsError(400, f"message {number}: data must be a base64 string")
        try:
            body = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise AmsError(400, f"message {number}: data is not valid base64") from None
        size = len(body) + sum(len(_utf8(k)) + len(_utf8(v)) for k, v in attributes.items())
        limit = self.settings.max_message_bytes
        if size > limit:
            raise AmsError(
                413,
                f"Message size is too large: message {number} has {size} bytes (data and "
                f"attributes), more than gateway.max_message_bytes ({limit}); nothing was sent",
            )
        self.schemas.check(topic, number - 1, body, attributes)  # AMS counts from 0
        return body, to_headers(attributes)

    # -- subscriptions ----------------------------------------------------------------

    def create_sub(
        self,
        user: str,
        name: str,
        topic_path: str,
        ack_deadline: int | None,
        push_config: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        push = parse_push_config(push_config or {}, None)
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
            sub = _Sub(name, topic, deadline, push=push)
            self._connect(sub)  # the durable subscription keeps what is published next
            self.subs[name] = sub
            self._save()
            self._start_push(sub)
        return self._describe(sub)

    def get_sub(self, name: str) -> dict[str, Any]:
        return self._describe(self._sub(name))

    def list_subs(self, page_size: int = 0, page_token: str = "") -> dict[str, Any]:
        with self._lock:
            names, next_token = page(sorted(self.subs), page_size, page_token)
            return {
                "subscriptions": [self._describe(self.subs[n]) for n in names],
                "nextPageToken": next_token,
                "totalSize": len(self.subs),
            }

    def delete_sub(self, user: str, name: str) -> None:
        with self._lock:
            sub = self._sub(name)
            self.authorize(user, "read", sub.topic, sub.name)
            self._stop_push(sub)
            self._remove(sub)

    def _remove(self, sub: _Sub) -> None:
        """Forget ``sub`` and its durable STOMP subscription (under ``self._lock``)."""
        with sub.lock:
            conn = self._connect(sub)
            if isinstance(conn, LogCursor):
                conn.forget()
            else:
                self._stomp_sub(sub).remove(conn, subscribed=True)
            if sub.link is not None:
                sub.link.close()
            sub.link = sub.conn = None
        del self.subs[sub.name]
        self._save()

    def modify_push_config(self, user: str, name: str, push_config: Mapping[str, Any]) -> None:
        """Set, change or (empty) clear the push configuration: a subscription pushed
        before and pulled now gets what was in flight again from the broker."""
        with self._lock:
            sub = self._sub(name)
            self.authorize(user, "read", sub.topic, sub.name)
            push = parse_push_config(push_config, sub.push)
            self._stop_push(sub)
            sub.push = push
            self._save()
            self._start_push(sub)

    def verify_push_endpoint(self, user: str, name: str) -> None:
        """AMS's ``:verifyPushEndpoint`` (:func:`~msgbus.gateway.push.verify_endpoint`)."""
        with self._lock:
            sub = self._sub(name)
            self.authorize(user, "read", sub.topic, sub.name)
            push = sub.push
        if push is None:
            raise AmsError(400, f"subscription {name} is not a push subscription")
        if push.verified:
            raise AmsError(409, "Push endpoint is already verified", status="CONFLICT")
        verify_endpoint(push, self._tls, self.settings.push_timeout)
        with self._lock:
            if sub.push == push:  # not changed meanwhile
                sub.push = replace(push, verified=True)
                self._save()
                if sub.pusher is None:
                    self._start_push(sub)

    def push_state(self, name: str) -> PushState | None:
        pusher = self._sub(name).pusher
        return pusher.status if pusher else None

    def _start_push(self, sub: _Sub) -> None:
        push = sub.push
        if push is None or (self.settings.push_verify and not push.verified):
            return
        pusher = Pusher(
            f"projects/{self.project}/subscriptions/{sub.name}",
            push,
            lambda count, wait: self._push_receive(sub, pusher, count, wait),
            lambda conn, frames: self._push_ack(sub, pusher, conn, frames),
            self._tls,
            self.settings.push_timeout,
            _message,
            self.counters.push_state(sub.name),
        )
        sub.pusher = pusher.start()

    def _stop_push(self, sub: _Sub) -> None:
        """Retire its pusher without waiting for a POST in flight (which holds no lock),
        and give the batch it had back to the broker (a new connection), for pulls or
        the next pusher: at least once, as every push."""
        if sub.pusher is None:
            return
        sub.pusher.stop()
        with sub.lock:
            sub.pusher = None  # the retired one neither receives nor acknowledges now
            if sub.link is not None:
                sub.link.close()
            sub.link = sub.conn = None

    def _push_receive(
        self, sub: _Sub, pusher: Pusher, count: int, wait: float
    ) -> tuple[object, list[MessageFrame]]:
        with sub.lock:
            if sub.pusher is not pusher:
                return None, []
            conn = self._connect(sub)
            return conn, receive(conn, count, wait)

    def _push_ack(
        self, sub: _Sub, pusher: Pusher, conn: object, frames: list[MessageFrame]
    ) -> None:
        with sub.lock:
            if sub.pusher is not pusher:
                return  # retired: its connection is gone, the broker hands them out again
            current = self._connect(sub)
            if conn is current:  # else the broker hands them out again
                current.ack(frames)

    def modify_ack_deadline(self, user: str, name: str, seconds: int) -> None:
        if not 1 <= seconds <= 600:
            raise AmsError(400, "ackDeadlineSeconds must be between 1 and 600")
        with self._lock:
            sub = self._sub(name)
            self.authorize(user, "read", sub.topic, sub.name)
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
            "pushConfig": sub.push.shown() if sub.push else {"pushEndpoint": "", "retryPolicy": {}},
            "ackDeadlineSeconds": sub.ack_deadline,
            **self._push_status(sub),
        }

    def _push_status(self, sub: _Sub) -> dict[str, Any]:
        if sub.push is None:
            return {}
        if sub.pusher is None:
            return {"pushStatus": "unverified: pushes start once :verifyPushEndpoint verified it"}
        return {"pushStatus": sub.pusher.status.status()}

    def _stomp_sub(self, sub: _Sub) -> Subscription:
        return Subscription(self.destination(sub.topic), f"gateway.{self.project}.{sub.name}")

    def _connect(self, sub: _Sub) -> Connection | LogCursor:
        """The subscription's connection, made again (with back-off: while the broker is
        away each request is answered 503 at once) when lost; what was handed out and not
        acknowledged goes back to the broker with the old connection. With a retention
        log, a cursor on it instead (:mod:`.replay`), made again once dropped."""
        if self.replay is not None:
            if sub.conn is None:
                sub.outstanding.clear()
                sub.conn = self.replay.cursor(sub.name, sub.topic)
            return sub.conn
        if sub.link is None:
            stomp_sub = self._stomp_sub(sub)
            settings = self.config.connection
            sub.link = Link(
                f"gateway: subscription {sub.name}",
                settings,
                open=opener(settings, stomp_sub.client_id(settings.client_id)),
                subscriptions=[lambda conn: stomp_sub.subscribe(conn, _PREFETCH)],
            )
        conn = sub.link.connection(until=time.monotonic())
        if conn is not sub.conn:
            sub.outstanding.clear()
            sub.conn = conn
        return conn

    # -- pull and acknowledge ---------------------------------------------------------

    def pull(
        self, user: str, name: str, max_messages: int, return_immediately: bool
    ) -> list[dict[str, Any]]:
        sub = self._sub(name)
        self.authorize(user, "read", sub.topic, sub.name)
        if max_messages < 1:
            raise AmsError(400, "maxMessages must be at least 1")
        if sub.push is not None:
            raise AmsError(
                409,
                f"subscription {name} is a push subscription: its messages go to "
                f"{sub.push.endpoint}; clear its pushConfig (:modifyPushConfig) to pull",
                status="CONFLICT",
            )
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
            out += [(self._ack_id(sub), f) for f in receive(conn, max_messages - len(out), wait)]
            deadline = now + sub.ack_deadline
            for ack_id, frame in out:
                sub.outstanding[ack_id] = Pulled(frame, deadline)
        return [{"ackId": ack_id, "message": _message(frame)} for ack_id, frame in out]

    def acknowledge(self, user: str, name: str, ack_ids: Sequence[str]) -> None:
        """Cumulative, as AMS documents it: the highest of ``ack_ids`` acknowledges every
        message handed out under it or a lower one and not acknowledged yet."""
        sub = self._sub(name)
        self.authorize(user, "read", sub.topic, sub.name)
        if not ack_ids:
            raise AmsError(400, "Invalid ack id")
        top = max(self._ack_number(sub, a) for a in ack_ids)
        with sub.lock:
            # First: a connection made anew forgets what the old one handed out.
            conn = self._connect(sub)
            highest = f"{self._ack_prefix(sub)}{top}"
            if highest not in sub.outstanding:
                # Expired (handed out again) or never given: AMS says so with a 408.
                raise AmsError(408, f"ack timeout: {highest}")
            done = [a for a in sub.outstanding if self._ack_number(sub, a) <= top]
            conn.ack([sub.outstanding.pop(a).frame for a in done])

    def _ack_prefix(self, sub: _Sub) -> str:
        return f"projects/{self.project}/subscriptions/{sub.name}:"

    def _ack_id(self, sub: _Sub) -> str:
        return f"{self._ack_prefix(sub)}{next(self._ack_ids)}"

    def _ack_number(self, sub: _Sub, ack_id: str) -> int:
        prefix = self._ack_prefix(sub)
        number = ack_id[len(prefix) :]
        if not ack_id.startswith(prefix) or not (number.isascii() and number.isdigit()):
            raise AmsError(400, f"Invalid ack id {ack_id[:200]!r}: not one of {prefix}N")
        return int(number)


def _message(frame: MessageFrame) -> dict[str, Any]:
    headers = frame.headers
    stamp = headers.get("timestamp", "")
    when = int(stamp) / 1000 if stamp.isdigit() else time.time()
    published = datetime.fromtimestamp(when, timezone.utc)
    return {
        "messageId": headers.get(ID_HEADER) or headers.get("message-id", ""),
        "attributes": from_headers(headers),
        "data": base64.b64encode(frame.body).decode("ascii"),
        "publishTime": published.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def not_served(what: str, left: str) -> AmsError:
    """The 501 for an AMS feature the gateway does not serve, saying what was left."""
    return AmsError(
        501,
        f"Not implemented: msgbus gateway does not serve {what}; it serves {_SERVED}; {left}",
    )
