"""Throughput and latency of one path through a running broker network.

The same workload runs twice in one go: published and consumed on one broker (the
baseline), then published on one broker and consumed on another across the bridges.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass

from msgbus.errors import NetworkError
from msgbus.network.local import LocalNetwork
from msgbus.network.verify import remove_durable
from msgbus.stomp.frames import MessageFrame
from msgbus.transport.connection import Connection

__all__ = ["PathRun", "measure_path"]

_WINDOW = 200  # messages between receipts: bounds what is unconfirmed in flight


@dataclass(frozen=True)
class PathRun:
    source: str
    target: str
    count: int
    seconds: float
    latency_ms_p50: float
    latency_ms_p99: float

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("inf")


def measure_path(
    net: LocalNetwork, source: str, target: str, *, count: int, size: int, timeout: float = 120.0
) -> PathRun:
    """Persistent messages to a topic on ``source``, read by a durable subscriber on ``target``."""
    topic = f"/topic/msgbus.bench.{uuid.uuid4().hex[:8]}"
    name = f"msgbus-bench-{uuid.uuid4().hex[:8]}"
    sub = net.connect(target, client_id=name)
    sub.subscribe(topic, id=name, headers={"activemq.subscriptionName": name})
    pub = net.connect(source)
    try:
        _wait_for_demand(pub, sub, topic)
        latencies: list[float] = []
        done = threading.Event()

        def consume() -> None:
            while len(latencies) < count:
                frame = sub.receive(timeout)
                if frame is None:
                    break
                if isinstance(frame, MessageFrame) and "bench-sent" in frame.headers:
                    latencies.append(time.time() - float(frame.headers["bench-sent"]))
            done.set()

        reader = threading.Thread(target=consume, name="bench-consumer", daemon=True)
        reader.start()
        body = b"x" * size
        start = time.monotonic()
        for i in range(count):
            receipt = f"b{i}" if (i + 1) % _WINDOW == 0 or i == count - 1 else None
            pub.send(
                topic,
                body,
                {"persistent": "true", "bench-sent": repr(time.time())},
                receipt=receipt,
            )
            if receipt:
                pub.wait_for_receipt(receipt, timeout)
        done.wait(timeout)
        seconds = time.monotonic() - start
        reader.join(1.0)
        if len(latencies) < count:
            raise NetworkError(
                f"{source} -> {target}: only {len(latencies)} of {count} messages arrived "
                f"within {timeout:g}s; run `msgbus network verify` on this topology"
            )
        latencies.sort()
        return PathRun(
            source,
            target,
            count,
            seconds,
            latency_ms_p50=latencies[len(latencies) // 2] * 1000,
            latency_ms_p99=latencies[int(len(latencies) * 0.99) - 1] * 1000,
        )
    finally:
        pub.disconnect()
        remove_durable(sub, id=name, name=name)
        sub.disconnect()


def _wait_for_demand(pub: Connection, sub: Connection, topic: str, timeout: float = 30.0) -> None:
    """Send markers until one crosses: the subscription has reached the source broker."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pub.send(topic, b"", {"bench-marker": "1"}, receipt="marker")
        pub.wait_for_receipt("marker", timeout)
        frame = sub.receive(1.0)
        if isinstance(frame, MessageFrame):
            while sub.receive(0.5) is not None:
                pass  # drop further markers
            return
    raise NetworkError(f"no subscription demand for {topic} crossed the network in {timeout:g}s")
