"""Prove which broker-to-broker paths of a running network deliver.

Every broker that answers gets a durable subscriber on the probe topic; each then
publishes uniquely tagged persistent probes; each delivery is matched to its
(publisher's broker, subscriber's broker) pair and timed. The topology says which
pairs must deliver (``Topology.reachable``); a missing one is a broken path.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from msgbus.errors import MsgbusError, NetworkError
from msgbus.network.local import LocalNetwork
from msgbus.network.rabbitmq_local import RabbitCluster
from msgbus.stomp.frames import MessageFrame
from msgbus.transport.connection import Connection

__all__ = ["DEFAULT_PROBE_TOPIC", "VerifyResult", "remove_durable", "verify"]

DEFAULT_PROBE_TOPIC = "/topic/msgbus.verify"
_RUN = "msgbus-verify-run"
_FROM = "msgbus-verify-from"
_SENT = "msgbus-verify-sent"


@dataclass
class VerifyResult:
    brokers: list[str]
    expected: set[tuple[str, str]]
    # (from, to) -> latency in ms of the first probe delivered on that path
    delivered: dict[tuple[str, str], float] = field(default_factory=dict)
    down: dict[str, str] = field(default_factory=dict)  # broker -> why it was unreachable

    @property
    def broken(self) -> set[tuple[str, str]]:
        return self.expected - set(self.delivered)

    @property
    def unexpected(self) -> set[tuple[str, str]]:
        """Deliveries the topology does not declare: a link it does not know about."""
        return set(self.delivered) - self.expected

    @property
    def ok(self) -> bool:
        return not self.broken and not self.unexpected


def verify(
    network: LocalNetwork | RabbitCluster,
    *,
    destination: str = DEFAULT_PROBE_TOPIC,
    timeout: float = 15.0,
    settle: float = 3.0,
) -> VerifyResult:
    """Probe every path; waits ``settle`` s for subscriptions to cross the bridges first."""
    if not destination.startswith("/topic/"):
        raise NetworkError(f"verify needs a topic for its durable subscribers, not {destination}")
    topo = network.topology
    names = [b.name for b in topo.brokers]
    expected = topo.reachable(destination) | {(n, n) for n in names}
    result = VerifyResult(brokers=names, expected=expected)
    run = uuid.uuid4().hex[:12]
    subscription = f"msgbus-verify-{run}"
    conns: dict[str, Connection] = {}
    try:
        for name in names:
            try:
                conn = network.connect(name, client_id=f"{subscription}-{name}")
                conn.subscribe(
                    destination,
                    id=subscription,
                    headers={"activemq.subscriptionName": subscription},
                )
            except MsgbusError as exc:
                result.down[name] = str(exc)
                continue
            conns[name] = conn
        time.sleep(settle)
        _probe_rounds(conns, destination, run, result, timeout)
    finally:
        for conn in conns.values():
            _drop_subscription(conn, subscription)
    return result


def _probe_rounds(
    conns: dict[str, Connection],
    destination: str,
    run: str,
    result: VerifyResult,
    timeout: float,
) -> None:
    """Publish probes in rounds until every expected path between live brokers delivered.

    A subscription still crossing the bridges when the first probe goes out would
    fail a healthy path, so a source whose paths are missing probes again.
    """
    wanted = {p for p in result.expected if p[0] in conns and p[1] in conns}
    deadline = time.monotonic() + timeout
    round_no = 0
    while True:
        round_no += 1
        sources = {src for src, dst in wanted - set(result.delivered)}
        for name in sorted(sources):
            conn = conns[name]
            headers = {_RUN: run, _FROM: name, _SENT: repr(time.time()), "persistent": "true"}
            receipt = f"{run}-{round_no}"
            try:
                conn.send(destination, f"probe from {name}".encode(), headers, receipt=receipt)
                conn.wait_for_receipt(receipt, timeout)
            except MsgbusError as exc:
                result.down[name] = f"could not publish: {exc}"
        round_end = min(deadline, time.monotonic() + max(timeout / 4, 2.0))
        while time.monotonic() < round_end and not wanted <= set(result.delivered):
            _receive(conns, run, result, 0.05)
        if wanted <= set(result.delivered) or time.monotonic() >= deadline:
            break
    # Anything still in flight shows up as a delivered (maybe unexpected) path.
    while _receive(conns, run, result, 0.2):
        pass


def _receive(conns: dict[str, Connection], run: str, result: VerifyResult, wait: float) -> bool:
    """Take at most one frame per connection; True when any arrived."""
    got = False
    for name, conn in conns.items():
        try:
            frame = conn.receive(wait)
        except MsgbusError:
            continue
        got |= frame is not None
        if isinstance(frame, MessageFrame) and frame.headers.get(_RUN) == run:
            pair = (frame.headers.get(_FROM, "?"), name)
            sent = float(frame.headers.get(_SENT, "0"))
            result.delivered.setdefault(pair, (time.time() - sent) * 1000.0)
    return got


def remove_durable(conn: Connection, *, id: str, name: str) -> None:
    """Close the subscriber, then delete its durable subscription on the broker.

    ActiveMQ refuses to delete a durable subscription whose consumer is still open
    ("Durable consumer is in use"), so one UNSUBSCRIBE cannot do both.
    """
    conn.unsubscribe(id=id)
    conn.unsubscribe(id=id, headers={"activemq.subscriptionName": name})


def _drop_subscription(conn: Connection, subscription: str) -> None:
    """Remove the durable subscription, so no broker keeps probes for it."""
    try:
        remove_durable(conn, id=subscription, name=subscription)
    except MsgbusError:
        pass  # a broker that went away keeps an offline subscription; harmless and tiny
    finally:
        conn.disconnect()
