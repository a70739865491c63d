"""``msgbus bench wire``: what a broker spends on a frame as msgbus writes it, against a
bare frame with the same body.

Every sender is one raw socket writing frames encoded beforehand, so the Python side
costs next to nothing and the broker's work is what differs. The frames are WLCG probe
results, one per frame, persistent, as ``msgbus publish FILES`` sends them: its body
headers (content-type, messageClass, recordCount, the selector fields), a msgbus-id,
the numbering in the compact or the legacy form (``publisher.wire``), and the confirmation units of
``publisher.confirm`` (encoded by the publisher's own code, :func:`unit_parts`). The
bare frames carry destination and persistent only, with a receipt where a cumulative
unit has one. For a local broker the process's CPU time is read from /proc before and
after each run: per frame it is steadier than msgs/s on a busy machine.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from msgbus.bench.broker import Endpoint, cpu_seconds
from msgbus.bench.raw import raw_drain, subscribe
from msgbus.publish import Envelope
from msgbus.publish.pipeline import unit_parts
from msgbus.publish.sequence import MemoryStreams, Sequencer
from msgbus.schema import decode_body
from msgbus.schema.body import body_headers
from msgbus.stomp import serialize
from msgbus.stomp.frames import SendFrame

__all__ = ["BARE", "WireRun", "run_wire_bench", "senders"]

BARE = "bare: destination, persistent"
_BATCH = 2048  # publisher.batch's default: frames per confirmation unit
_PERSISTENT = {"persistent": "true"}


@dataclass(frozen=True, slots=True)
class WireRun:
    """Medians over the rounds of one sender."""

    sender: str
    count: int
    seconds: float
    cpu_seconds: float | None
    """The broker's CPU time during the run; None when its process is not local."""

    @property
    def rate(self) -> float:
        return self.count / max(self.seconds, 1e-9)

    @property
    def cpu_us(self) -> float | None:
        return None if self.cpu_seconds is None else self.cpu_seconds / self.count * 1e6


Encoder = Callable[[list[bytes], str], tuple[list[bytes], int]]
"""Bodies and destination to the bytes to write (per unit) and the receipts to await."""


def _units(count: int) -> Iterator[range]:
    return (range(i, min(i + _BATCH, count)) for i in range(0, count, _BATCH))


def _bare(bodies: list[bytes], dest: str) -> tuple[list[bytes], int]:
    units = []
    for unit in _units(len(bodies)):
        frames = [
            serialize(SendFrame({"destination": dest, **_PERSISTENT}, bodies[i])) for i in unit
        ]
        last = {"destination": dest, **_PERSISTENT, "receipt": f"u{unit.start}"}
        frames[-1] = serialize(SendFrame(last, bodies[unit[-1]]))
        units.append(b"".join(frames))
    return units, len(units)


def _msgbus(*, wire: str, confirm: str, selectors: bool = True) -> Encoder:
    def encode(bodies: list[bytes], dest: str) -> tuple[list[bytes], int]:
        envelopes = []
        for body in bodies:
            headers = {}
            if selectors:  # compact: the selector headers are all its body headers
                message = decode_body(body, {})[0].message
                assert message is not None, "the bench's own results are valid"
                headers = body_headers([message], "wlcg", lean=wire == "compact")
            envelopes.append(Envelope(dest, body, headers))
        numbered = list(
            Sequencer(MemoryStreams(), ends=False, compact=wire == "compact").stamp(iter(envelopes))
        )
        units = [
            b"".join(
                unit_parts(
                    numbered[unit.start : unit.stop],
                    f"u{unit.start}",
                    transaction=confirm == "transaction",
                    extra=dict(_PERSISTENT),
                    version="1.2",
                )
            )
            for unit in _units(len(bodies))
        ]
        return units, len(units)

    return encode


def senders() -> dict[str, Encoder]:
    """The senders compared, the bare one first."""
    return {
        BARE: _bare,
        "msgbus: wire legacy, confirm transaction (before)": _msgbus(
            wire="legacy", confirm="transaction"
        ),
        "msgbus: wire legacy, confirm cumulative": _msgbus(wire="legacy", confirm="cumulative"),
        "msgbus: wire compact, confirm transaction (default)": _msgbus(
            wire="compact", confirm="transaction"
        ),
        "msgbus: wire compact, confirm cumulative": _msgbus(wire="compact", confirm="cumulative"),
        "the default without selector headers": _msgbus(
            wire="compact", confirm="transaction", selectors=False
        ),
    }


def _send(endpoint: Endpoint, units: list[bytes], receipts: int) -> tuple[float, float | None]:
    """Write ``units``, wait for ``receipts``; wall seconds and the broker's CPU seconds."""
    with endpoint.client() as client:
        cpu = cpu_seconds(endpoint.pid)
        started = time.monotonic()
        for unit in units:
            client.send_bytes(unit)
        seen = 0
        while seen < receipts:
            seen += sum(1 for f in client.read() if f.command == "RECEIPT")
        elapsed = time.monotonic() - started
        after = cpu_seconds(endpoint.pid)
    return elapsed, None if cpu is None or after is None else after - cpu


def _empty(endpoint: Endpoint, dest: str, count: int) -> None:
    """Take what a run left on its queue, so broker memory does not throttle the next."""
    with endpoint.client() as client:
        raw_drain(client, count, seen=subscribe(client, dest))


def run_wire_bench(
    endpoint: Endpoint,
    bodies: list[bytes],
    rounds: int,
    *,
    progress: Callable[[int], None] | None = None,
) -> list[WireRun]:
    """Each sender once per round, interleaved, on a fresh queue; medians per sender."""
    prefix = f"/queue/msgbus.bench.wire.{int(time.time())}"
    plan = senders()
    warm = f"{prefix}.warmup"
    _send(endpoint, *_bare(bodies, warm))  # the broker's JIT and journal, warm for all
    _empty(endpoint, warm, len(bodies))
    runs: dict[str, list[tuple[float, float | None]]] = {name: [] for name in plan}
    for round_no in range(rounds):
        for number, (name, encode) in enumerate(plan.items()):
            dest = f"{prefix}.{round_no}.{number}"
            runs[name].append(_send(endpoint, *encode(bodies, dest)))
            _empty(endpoint, dest, len(bodies))
        if progress is not None:
            progress(round_no + 1)
    out = []
    for name, measured in runs.items():
        cpus = [cpu for _, cpu in measured if cpu is not None]
        seconds = statistics.median(wall for wall, _ in measured)
        out.append(WireRun(name, len(bodies), seconds, statistics.median(cpus) if cpus else None))
    return out
