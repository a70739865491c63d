"""Instructions per message of each stage of the consumer and the publisher, counted by
callgrind (deterministic on a noisy machine): ``msgbus bench instructions``.

Each path runs its stages one after another over all N messages, calling ``getppid()``
between them; callgrind, told to dump its counters before every call of ``getppid``
(``--dump-before``), writes one count per stage. Each path runs with N and with 2N
messages and a stage's count per message is the difference divided by N, so that
imports, set-up and whatever a stage pays once (a lazy import, a statement compiled on
first use) cancel out: a single run divided by N counts them as per-message work.

* ``consumer N [STORE]``: MESSAGE frames as a broker delivers them -> ``parse`` (the
  shared STOMP parser) -> ``decode`` (key, UTF-8, the WLCG splitter) -> ``validate``
  (pydantic) -> ``ledger`` (the completeness bookkeeping of each frame) -> ``row``
  (``message_row``) -> ``insert`` (the store's insert and ledger write, one transaction
  per 500 messages, into STORE or a scratch SQLite file; this process's instructions
  only, not the database server's).
* ``publisher N``: WLCG text -> ``read`` (the splitter) -> ``validate`` -> ``frame``
  (the Publisher's envelopes and SEND heads, as ``msgbus publish`` makes them) ->
  ``send`` (the frames joined per 100 and written, to /dev/null).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from msgbus.errors import ConfigError

__all__ = [
    "CONSUMER_STAGES",
    "PUBLISHER_STAGES",
    "StageCounts",
    "count_instructions",
    "per_message",
    "read_segments",
]

CONSUMER_STAGES = ("parse", "decode", "validate", "ledger", "row", "insert")
PUBLISHER_STAGES = ("read", "validate", "frame", "send")
STAGES = {"consumer": CONSUMER_STAGES, "publisher": PUBLISHER_STAGES}
_BATCH = 500  # the consumer's default batch: one transaction each
_SEND_CHUNK = 100


def _mark() -> None:
    """The end of a segment: callgrind dumps its counters before each ``getppid``."""
    os.getppid()


@dataclass(frozen=True, slots=True)
class StageCounts:
    """Instructions per message of each stage, from a run with N and one with 2N."""

    path: str
    count: int
    stages: dict[str, float]
    naive: float
    """The whole run with N messages divided by N, as a single count would say: imports,
    set-up and the making of the test messages included."""

    @property
    def total(self) -> float:
        """Per message, all stages."""
        return sum(self.stages.values())


def per_message(path: str, count: int, small: Sequence[int], large: Sequence[int]) -> StageCounts:
    """``small`` and ``large``: the segments (set-up, one per stage, exit) of the runs
    with ``count`` and ``2 * count`` messages."""
    stages = STAGES[path]
    for segments in (small, large):
        if len(segments) != len(stages) + 2:
            raise ConfigError(
                f"callgrind wrote {len(segments)} counts for the {path} path, expected "
                f"{len(stages) + 2} (set-up, {', '.join(stages)}, exit); something else "
                "called getppid(): count with another marker"
            )
    per_stage = {name: (large[i + 1] - small[i + 1]) / count for i, name in enumerate(stages)}
    return StageCounts(path, count, per_stage, sum(small) / count)


def read_segments(out: Path) -> list[int]:
    """The instruction totals callgrind dumped to ``out.1``, ``out.2``, ... and ``out``
    (what ran after the last dump), in the order they ran."""
    numbered = sorted(out.parent.glob(out.name + ".*"), key=lambda p: int(p.suffix[1:]))
    return [_total(p) for p in [*numbered, out]]


def _total(dump: Path) -> int:
    for line in dump.read_text().splitlines():
        if line.startswith(("totals:", "summary:")):
            return int(line.split()[1])
    raise ConfigError(f"no totals line in callgrind's {dump}; is valgrind's callgrind broken?")


def count_instructions(path: str, count: int, store_url: str | None = None) -> StageCounts:
    """Run ``path`` under callgrind with ``count`` and ``2 * count`` messages, both at
    once (callgrind is single-threaded)."""
    if shutil.which("valgrind") is None:
        raise ConfigError("counting instructions needs valgrind: apt-get install valgrind")
    with tempfile.TemporaryDirectory(prefix="msgbus-callgrind-") as tmp:
        sizes = (count, 2 * count)
        outs = [Path(tmp) / f"n{n}" for n in sizes]
        runs = [_callgrind(path, n, store_url, out) for n, out in zip(sizes, outs, strict=True)]
        for run in runs:
            _, stderr = run.communicate()
            if run.returncode != 0:
                last = (stderr.strip().splitlines() or ["no output"])[-1]
                raise ConfigError(f"the {path} path failed under callgrind: {last}")
        small, large = (read_segments(out / "cg") for out in outs)
    return per_message(path, count, small, large)


def _callgrind(path: str, count: int, store_url: str | None, out: Path) -> subprocess.Popen[str]:
    out.mkdir()
    command = ["valgrind", "--tool=callgrind", "--dump-before=getppid"]
    command += [f"--callgrind-out-file={out / 'cg'}", sys.executable]
    command += ["-m", "msgbus.bench.instructions", path, str(count), *filter(None, [store_url])]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


# -- the paths, run under callgrind ----------------------------------------------------


def _bodies(count: int) -> list[bytes]:
    from msgbus.bench.publish import probe_files

    return probe_files(Path(tempfile.mkdtemp(prefix="msgbus-instr-")), count)


def _delivered(count: int, tag: str) -> bytes:
    """``count`` MESSAGE frames with the headers a broker adds (ActiveMQ's escaped ids);
    ``tag`` makes the ids and the producer unique to the run."""
    from msgbus.stomp import serialize
    from msgbus.stomp.frames import MessageFrame
    from msgbus.stomp.headers import compact_number

    return b"".join(
        serialize(
            MessageFrame(
                {
                    "destination": "/topic/x", "subscription": "s",
                    "message-id": f"ID:host-1-1764000000000-1:1:1:1:{i}",
                    "ack": f"ID:host-1-1764000000000-{i}", "msgbus-id": f"{tag}-{i}",
                    "msgbus-seq": compact_number(tag, 1, i + 1),
                    "persistent": "true", "priority": "4",
                    "timestamp": "1764928800000", "expires": "0",
                },
                body,
            )
        )
        for i, body in enumerate(_bodies(count))
    )  # fmt: skip


def consumer_path(count: int, store_url: str | None = None) -> int:
    import sqlalchemy as sa

    from msgbus.consume.messages import _account, message_key
    from msgbus.schema.registry import DEFAULT_MESSAGE_CLASS, model_for
    from msgbus.schema.text import to_text
    from msgbus.schema.validation import validate_message
    from msgbus.schema.wlcg import plain_fields, wlcg_chunks
    from msgbus.stomp import FrameParser
    from msgbus.stomp.frames import MessageFrame
    from msgbus.store.database import Store, StoredMessage, message_row
    from msgbus.store.ledger import LedgerBatch
    from msgbus.store.ledger import apply as apply_ledger
    from msgbus.store.tables import ledger_gaps, ledger_producers, table_for

    tag = f"msgbus-instr-{time.time_ns()}"
    data = _delivered(count, tag)
    store = Store(store_url or f"sqlite:///{tempfile.mkdtemp(prefix='msgbus-instr-')}/s.db")
    store.init()
    _mark()
    frames = [f for f in FrameParser(role="client").feed(data) if isinstance(f, MessageFrame)]
    _mark()
    split = []
    for frame in frames:
        model = model_for(frame.headers.get("messageClass") or DEFAULT_MESSAGE_CLASS)
        chunks = wlcg_chunks(to_text(frame.body))
        split.append((message_key(frame), model, [plain_fields(c, model) for c, _ in chunks]))
    _mark()
    stored = [
        StoredMessage(key, no, validate_message(model, fields, no).message)  # type: ignore[arg-type]
        for key, model, parts in split
        for no, fields in enumerate(parts, 1)
    ]
    _mark()
    ledgers = [LedgerBatch() for _ in range(0, count, _BATCH)]
    for i, (frame, item) in enumerate(zip(frames, stored, strict=True)):
        _account(ledgers[i // _BATCH], frame, item.message)
    _mark()
    now = datetime.now(timezone.utc)
    rows = [message_row(item, now) for item in stored]
    _mark()
    table = table_for("ProbeResult")
    for i, ledger in enumerate(ledgers):
        with store.engine.begin() as conn:
            store._insert_fresh(conn, table, rows[i * _BATCH : (i + 1) * _BATCH])
            apply_ledger(conn, ledger, now)
    _mark()
    with store.engine.begin() as conn:  # a real store keeps no trace of the run
        conn.execute(sa.delete(table).where(table.c.msg_id.startswith(f"{tag}-")))
        for t in (ledger_gaps, ledger_producers):
            conn.execute(sa.delete(t).where(t.c.producer == tag))
    store.close()
    return len(rows)


def publisher_path(count: int) -> int:
    from msgbus.publish.publisher import Publisher
    from msgbus.schema import ProbeResult
    from msgbus.schema.text import to_text
    from msgbus.schema.validation import validate_message
    from msgbus.schema.wlcg import plain_fields, wlcg_chunks
    from msgbus.stomp import encode_headers

    text = b"".join(_bodies(count))
    publisher = Publisher(spool=False)
    send = b"SEND\n" + encode_headers("SEND", {"destination": "/topic/x"})
    _mark()
    read = [(c, plain_fields(c, ProbeResult)) for c, _ in wlcg_chunks(to_text(text))]
    _mark()
    records = []
    for no, (chunk, fields) in enumerate(read, 1):
        record = validate_message(ProbeResult, fields, no)
        record.source = chunk
        records.append(record)
    _mark()
    # As `msgbus publish` does (Publisher.publish_read): the text read is the body.
    envelopes = list(publisher._read_envelopes(records, None))
    for envelope in envelopes:
        envelope.head("1.2")
    _mark()
    with open(os.devnull, "wb", buffering=0) as sink:
        for i in range(0, len(envelopes), _SEND_CHUNK):
            batch = envelopes[i : i + _SEND_CHUNK]
            sink.write(b"".join([p for e in batch for p in e.frame_parts(send, "1.2")]))
    _mark()
    return len(envelopes)


def format_table(counts: Sequence[StageCounts]) -> list[str]:
    """One line per stage with its instructions per message, then the totals."""
    lines = [f"{'path':<10}{'stage':<10}{'instructions/msg':>18}"]
    for c in counts:
        lines += [f"{c.path:<10}{name:<10}{n:>18,.0f}" for name, n in c.stages.items()]
        lines.append(f"{c.path:<10}{'total':<10}{c.total:>18,.0f}")
        lines.append(f"{'':<10}(the whole run / N would say {c.naive:,.0f}, N={c.count})")
    return lines


if __name__ == "__main__":
    paths: dict[str, Callable[..., int]] = {"consumer": consumer_path, "publisher": publisher_path}
    n = int(sys.argv[2])
    done = paths[sys.argv[1]](n, *sys.argv[3:])
    assert done == n, f"{done} of {n}"
