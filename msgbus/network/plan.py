"""Reconfigure a running network broker by broker without losing messages.

The plan compares the topology the network was brought up with against the new one:
new brokers start first (so links to them have somewhere to go), brokers whose
rendered configuration changed restart one at a time (KahaDB keeps their persistent
messages across a clean stop, and clients fail over meanwhile), and removed brokers
go last: their durable subscriptions are recreated on a surviving broker, their
queues are moved there message by message (each acknowledged only after the other
broker's receipt), and only an empty broker is stopped.

ActiveMQ shows only connected durable subscribers over STOMP, so an offline durable
subscription on a removed broker is not seen: reconnect its client first.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from msgbus.errors import MsgbusError, NetworkError
from msgbus.network.local import LocalNetwork
from msgbus.network.render import render_broker
from msgbus.network.stats import destination_stats, durable_subscriptions
from msgbus.network.topology import Topology
from msgbus.stomp.frames import MessageFrame
from msgbus.transport.connection import Connection

__all__ = ["Plan", "Step", "apply_plan", "make_plan"]

# Headers the broker sets on delivery; the copy sent on gets fresh ones.
_DELIVERY_HEADERS = frozenset(
    {
        "message-id",
        "destination",
        "subscription",
        "ack",
        "content-length",
        "redelivered",
        "timestamp",
        "expires",
        "original-destination",
    }
)


@dataclass(frozen=True)
class Step:
    action: str  # "add" | "restart" | "remove"
    broker: str
    reason: str = ""
    move_to: str | None = None

    def describe(self) -> str:
        if self.action == "add":
            return f"add broker {self.broker}: render and start it"
        if self.action == "restart":
            return f"restart broker {self.broker} with its new configuration ({self.reason})"
        return (
            f"remove broker {self.broker}: recreate its durable subscriptions on "
            f"{self.move_to}, move its queued messages to {self.move_to}, then stop it"
        )


@dataclass
class Plan:
    old: Topology | None
    new: Topology
    steps: list[Step] = field(default_factory=list)


def make_plan(old: Topology | None, new: Topology) -> Plan:
    """The steps that turn the network running ``old`` into ``new``."""
    plan = Plan(old, new)
    if old is None:
        plan.steps = [Step("add", b.name) for b in new.brokers]
        return plan
    old_names = {b.name for b in old.brokers}
    new_names = {b.name for b in new.brokers}
    for broker in new.brokers:
        if broker.name not in old_names:
            plan.steps.append(Step("add", broker.name))
    for broker in new.brokers:
        if broker.name in old_names and render_broker(old, broker.name) != render_broker(
            new, broker.name
        ):
            plan.steps.append(Step("restart", broker.name, reason=_why(old, new, broker.name)))
    for broker in old.brokers:
        if broker.name not in new_names:
            plan.steps.append(
                Step("remove", broker.name, move_to=_successor(old, new, broker.name))
            )
    return plan


def _why(old: Topology, new: Topology, name: str) -> str:
    def links(t: Topology) -> set[str]:
        return {f"{x.source}->{x.target}" for x in t.links if name in (x.source, x.target)}

    if old.broker(name) != new.broker(name):
        return "broker settings changed"
    gone, added = links(old) - links(new), links(new) - links(old)
    if gone or added:
        parts = [f"+{x}" for x in sorted(added)] + [f"-{x}" for x in sorted(gone)]
        return "links " + " ".join(parts)
    return "links, policies or users changed"


def _successor(old: Topology, new: Topology, name: str) -> str:
    """A surviving neighbour of the removed broker, else the new topology's first broker."""
    survivors = {b.name for b in new.brokers}
    for link in old.links:
        for a, b in ((link.source, link.target), (link.target, link.source)):
            if a == name and b in survivors:
                return b
    return new.brokers[0].name


def apply_plan(plan: Plan, net: LocalNetwork, *, echo: Callable[[str], None] = print) -> None:
    """Carry out ``plan`` on ``net`` (a LocalNetwork of the new topology)."""
    old_net = LocalNetwork(plan.old, net.state_dir) if plan.old is not None else None
    net.state_dir.mkdir(parents=True, exist_ok=True)
    for step in plan.steps:
        echo(f"- {step.describe()}")
        if step.action == "add":
            # Links to it may start from brokers not yet restarted: form at the end.
            net.up([step.broker], form=False)
        elif step.action == "restart":
            net.restart(step.broker)
        else:
            assert old_net is not None and step.move_to is not None
            _remove(old_net, net, step.broker, step.move_to, echo)
        # Saved after every step: an interrupted apply resumes from what is running.
        _merged(plan, net, done=step).save()
    net.save()
    net.wait_formed()


def _merged(plan: Plan, net: LocalNetwork, *, done: Step) -> LocalNetwork:
    """The new topology, still holding brokers whose removal has not happened yet."""
    if plan.old is None:
        return net
    index = plan.steps.index(done)
    pending = {s.broker for s in plan.steps[index + 1 :] if s.action == "remove"}
    keep = [b for b in plan.old.brokers if b.name in pending]
    if not keep:
        return net
    topo = plan.new.model_copy(update={"brokers": [*plan.new.brokers, *keep]})
    return LocalNetwork(topo, net.state_dir)


def _remove(
    old_net: LocalNetwork,
    new_net: LocalNetwork,
    name: str,
    target: str,
    echo: Callable[[str], None],
) -> None:
    proc = old_net.process(name)
    if not proc.is_running():
        echo(f"  {name} is not running; nothing to drain")
        return
    src = old_net.connect(name)
    try:
        for sub in durable_subscriptions(src):
            _recreate_durable(
                new_net, target, sub.client_id, sub.name, sub.destination, sub.selector
            )
            echo(f"  durable subscription {sub.client_id}/{sub.name} recreated on {target}")
        dst = new_net.connect(target)
        try:
            for dest in destination_stats(src):
                if dest.name.startswith("queue://") and dest.size:
                    moved = _move_queue(src, dst, dest.name.removeprefix("queue://"))
                    echo(f"  moved {moved} messages of /queue/{dest.name[8:]} to {target}")
        finally:
            dst.disconnect()
        left = [d for d in destination_stats(src) if d.name.startswith("queue://") and d.size]
        if left:
            raise NetworkError(
                f"{name} still holds messages in {', '.join(d.name for d in left)} (producers "
                "still sending?); move those clients away and run apply again"
            )
    finally:
        src.disconnect()
    proc.stop()


def _recreate_durable(
    net: LocalNetwork,
    broker: str,
    client_id: str,
    name: str,
    destination: str,
    selector: str | None,
) -> None:
    conn = net.connect(broker, client_id=client_id)
    try:
        headers = {"activemq.subscriptionName": name}
        if selector:
            headers["selector"] = selector
        conn.subscribe(destination, id=name, headers=headers)
        # Leaving without UNSUBSCRIBE keeps the subscription, offline, collecting messages.
    finally:
        conn.disconnect()


def _move_queue(src: Connection, dst: Connection, queue: str, idle: float = 2.0) -> int:
    """Move every message of ``queue`` from ``src`` to ``dst``: ACK only after dst's receipt."""
    sub = uuid.uuid4().hex
    src.subscribe(
        f"/queue/{queue}", id=sub, ack="client-individual", headers={"activemq.prefetchSize": "1"}
    )
    moved = 0
    try:
        while True:
            frame = src.receive(idle)
            if frame is None:
                break
            if not isinstance(frame, MessageFrame):
                continue
            headers = {k: v for k, v in frame.headers.items() if k not in _DELIVERY_HEADERS}
            headers["persistent"] = frame.headers.get("persistent", "true")
            receipt = f"move-{sub}-{moved}"
            dst.send(f"/queue/{queue}", frame.body, headers, receipt=receipt)
            dst.wait_for_receipt(receipt, 30.0)
            src.ack([frame])
            moved += 1
    except MsgbusError as exc:
        raise NetworkError(
            f"moving /queue/{queue} stopped after {moved} messages: {exc}; the rest stays "
            "on the old broker; run apply again"
        ) from None
    finally:
        src.unsubscribe(id=sub, receipt=False)
    return moved
