"""dirq in the QueueSimple format, without signatures: `msgbus publish --dirq` drains an
outgoing queue (each element removed only once confirmed), `msgbus consume --dirq
--dirq-format simple` fills one; bodies pass unmodified, whatever they hold. (SSM's
queue formats with signatures: tests/integration/interop/test_ssm.py.)"""

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
    bodies = [(probe_text(f"element {i} a", 5) + probe_text(f"element {i} b", 5)).encode()
              for i in range(3)]  # fmt: skip
    bodies += [b"APEL-summary-job-message: v0.2\nSite: X\n%%\n", b"\x00\xffavro\n"]
    for body in bodies:
        outgoing.add(body)
    with BrokerThread(BrokerConfig(port=0)) as broker:
        sent = run_msgbus(
            ["publish", "--broker", broker.url, "--destination", "/queue/ssm", "--dirq",
             str(tmp_path / "outgoing")]
        )  # fmt: skip
        assert sent.returncode == 0 and "5 elements published and removed" in sent.stdout
        assert outgoing.count() == 0
        received = run_msgbus(
            ["consume", "--drain", "--broker", broker.url, "--destination", "/queue/ssm",
             "--dirq", str(tmp_path / "incoming"), "--dirq-format", "simple"]
        )  # fmt: skip
        assert received.returncode == 0, received.stdout
        assert "stored 5, duplicates 0, dead-lettered 0" in received.stdout
        # No broker: nothing is removed, nothing lost.
        outgoing.add(probe_text("later", 5).encode())
        offline = run_msgbus(
            ["publish", "--broker", "stomp://127.0.0.1:1", "--dirq", str(tmp_path / "outgoing")]
        )
    assert offline.returncode == 1 and outgoing.count() == 1
    assert sorted(_elements(QueueSimple(str(tmp_path / "incoming")))) == sorted(bodies)
