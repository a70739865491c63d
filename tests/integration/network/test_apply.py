"""`apply` on real brokers: remove a broker without losing its queue or durable subscriber."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from msgbus.network.activemq import find_installation, free_port
from msgbus.network.local import LocalNetwork
from msgbus.network.plan import apply_plan, make_plan
from msgbus.network.topology import Topology, parse_topology
from msgbus.network.verify import verify
from msgbus.stomp.frames import MessageFrame
from msgbus.transport.connection import Connection
from tests.fixtures.activemq import FAST_START_JVM
from tests.fixtures.services import require_service


def _topology(brokers: dict[str, dict[str, int]], links: list[dict[str, Any]]) -> Topology:
    return parse_topology(
        {
            "name": "apply",
            "users": [
                {"name": "admin", "password": "secret", "groups": ["admins"]},
                {"name": "bridge", "password": "bridge", "groups": ["bridges"]},
            ],
            "permissions": [
                {"destination": d, "read": ["admins"], "write": ["admins"], "admin": ["admins"]}
                for d in ("/queue/>", "/topic/>")
            ],
            "brokers": [
                {"name": n, "ports": p, "heap_mb": 128, "jvm_options": FAST_START_JVM}
                for n, p in brokers.items()
            ],
            "links": links,
        }
    )


def _apply(new: Topology, state: Path) -> list[str]:
    net = LocalNetwork(new, state)
    said: list[str] = []
    apply_plan(make_plan(net.saved(), new), net, echo=said.append)
    return said


def _take(conn: Connection, count: int, timeout: float = 10.0) -> list[bytes]:
    out: list[bytes] = []
    while len(out) < count:
        frame = conn.receive(timeout)
        if frame is None:
            break
        if isinstance(frame, MessageFrame):
            out.append(frame.body)
    return out


def test_remove_a_broker_moves_its_queue_and_durable_subscription(tmp_path: Path) -> None:
    require_service("ActiveMQ", find_installation)
    ports = {n: {"stomp": free_port(), "openwire": free_port()} for n in "xyz"}
    state = tmp_path / "state"
    two = _topology(
        {"x": ports["x"], "y": ports["y"]}, [{"from": "x", "to": "y", "duplex": True, "ttl": 1}]
    )
    _apply(two, state)
    net = LocalNetwork(two, state)
    try:
        queued = [f"job-{i}".encode() for i in range(10)]
        producer = net.connect("y")
        for i, body in enumerate(queued):
            producer.send("/queue/grid.work", body, {"persistent": "true"}, receipt=f"r{i}")
            producer.wait_for_receipt(f"r{i}", 30)
        producer.disconnect()
        subscriber = net.connect("y", client_id="store-y")
        subscriber.subscribe("/topic/grid.t", id="s", headers={"activemq.subscriptionName": "s"})

        one = _topology({"x": ports["x"]}, [])
        said = _apply(one, state)
        assert any("remove broker y" in line for line in said)
        assert any("moved 10 messages of /queue/grid.work to x" in line for line in said)
        assert not net.process("y").is_running()
        subscriber.close()

        x = LocalNetwork(one, state)
        publisher = x.connect("x")
        publisher.send("/topic/grid.t", b"after the move", {"persistent": "true"}, receipt="t")
        publisher.wait_for_receipt("t", 30)
        publisher.disconnect()
        moved = x.connect("x")
        moved.subscribe("/queue/grid.work", id="w")
        assert _take(moved, 10) == queued
        moved.disconnect()
        durable = x.connect("x", client_id="store-y")
        durable.subscribe("/topic/grid.t", id="s", headers={"activemq.subscriptionName": "s"})
        assert _take(durable, 1) == [b"after the move"]
        durable.disconnect()

        grown = _topology(
            {"x": ports["x"], "z": ports["z"]}, [{"from": "x", "to": "z", "duplex": True, "ttl": 1}]
        )
        said = _apply(grown, state)
        assert [line.split(":")[0] for line in said] == [
            "- add broker z",
            "- restart broker x with its new configuration (links +x->z)",
        ]
        assert verify(LocalNetwork(grown, state), timeout=20.0).ok
    finally:
        for name in "xyz":
            LocalNetwork(_topology({name: ports[name]}, []), state).process(name).kill()
