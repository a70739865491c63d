"""dirq interop, as stompclt/SSM senders and receivers use directory queues: `msgbus
publish --dirq` drains one (each element removed only once confirmed), `msgbus consume
--dirq` fills one; a real `dirq` QueueSimple on both sides."""

from __future__ import annotations

from pathlib import Path

from dirq.QueueSimple import QueueSimple

from msgbus.broker import BrokerConfig
from msgbus.broker.server import BrokerThread
from tests.chaos.harness import probe_text
from tests.fixtures.pipeline import run_msgbus


def _elements(queue: QueueSimple) -> list[bytes]:
    out = []
    for name in queue:
        if queue.lock(name):
            data = queue.get(name)
            out.append(data if isinstance(data, bytes) else str(data).encode())
            queue.unlock(name)
    return out


def test_a_dirq_is_drained_through_the_bus_into_another_dirq(tmp_path: Path) -> None:
    outgoing = QueueSimple(str(tmp_path / "outgoing"))
    for i in range(5):  # SSM-style: one element, one or more records
        outgoing.add((probe_text(f"element {i} a", 5) + probe_text(f"element {i} b", 5)).encode())
    outgoing.add(b"metricStatus: OK\nEOT\n")  # invalid: stays, reported
    with BrokerThread(BrokerConfig(port=0)) as broker:
        sent = run_msgbus(
            ["publish", "--broker", broker.url, "--destination", "/queue/ssm", "--dirq",
             str(tmp_path / "outgoing")]
        )  # fmt: skip
        assert sent.returncode == 1 and "5 elements published and removed" in sent.stdout
        assert "left in the queue" in sent.stdout
        assert outgoing.count() == 1  # only the invalid element is left
        received = run_msgbus(
            ["consume", "--drain", "--broker", broker.url, "--destination", "/queue/ssm",
             "--dirq", str(tmp_path / "incoming")]
        )  # fmt: skip
        assert received.returncode == 0, received.stdout
        # No broker: nothing is removed, nothing lost.
        outgoing.add(probe_text("later", 5).encode())
        offline = run_msgbus(
            ["publish", "--broker", "stomp://127.0.0.1:1", "--dirq", str(tmp_path / "outgoing")]
        )
    assert offline.returncode == 1 and outgoing.count() == 2
    bodies = _elements(QueueSimple(str(tmp_path / "incoming")))
    summaries = sorted(
        line.split(": ", 1)[1] for body in bodies for line in body.decode().splitlines()
        if line.startswith("summaryData: ")
    )  # fmt: skip
    assert summaries == sorted(f"element {i} {x}" for i in range(5) for x in "ab")
