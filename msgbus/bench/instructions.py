"""The per-message work of the consumer and the publisher, without any I/O, for counting
instructions with callgrind (deterministic on a noisy machine; see
``deploy/bench-instructions.sh``, which runs this twice and divides the difference).

* ``consumer N``: N MESSAGE frames as bytes -> the shared STOMP parser -> decode and
  validate (``sort_frames``, ledger included) -> the store's rows (``message_row``).
* ``publisher N``: N WLCG results as text -> ``read_stream`` (validates) -> the
  Publisher's envelopes as ``msgbus publish`` makes them (``publish_read``: the text
  read is the body) -> the SEND frame's head.
"""

from __future__ import annotations

import io
import sys
from datetime import datetime, timezone

from msgbus.bench.publish import probe_files
from msgbus.consume.messages import sort_frames
from msgbus.publish.publisher import Publisher
from msgbus.schema import ProbeResult
from msgbus.schema.stream import read_stream
from msgbus.stomp import FrameParser, serialize
from msgbus.stomp.frames import MessageFrame
from msgbus.store.database import message_row

__all__ = ["consumer_path", "publisher_path"]


def _bodies(count: int) -> list[bytes]:
    import tempfile
    from pathlib import Path

    return probe_files(Path(tempfile.mkdtemp(prefix="msgbus-instr-")), count)


def consumer_path(count: int) -> int:
    data = b"".join(
        serialize(
            MessageFrame(
                {
                    "destination": "/queue/x", "subscription": "s", "message-id": f"m{i}",
                    "ack": f"a{i}", "msgbus-id": f"id-{i}", "msgbus-producer": "p",
                    "msgbus-epoch": "1", "msgbus-seq": str(i + 1),
                    "content-type": "text/plain; charset=utf-8", "messageClass": "ProbeResult",
                },
                body,
            )
        )
        for i, body in enumerate(_bodies(count))
    )  # fmt: skip
    frames = [f for f in FrameParser(role="client").feed(data) if isinstance(f, MessageFrame)]
    now = datetime.now(timezone.utc)
    rows = [message_row(m, now) for m in sort_frames(frames).messages]
    return len(rows)


def publisher_path(count: int) -> int:
    text = b"".join(_bodies(count))
    publisher = Publisher(spool=False)
    records = (d for d in read_stream(io.BytesIO(text), ProbeResult) if d.message)
    # As `msgbus publish` does (Publisher.publish_read).
    heads = [e.head("1.2") for e in publisher._read_envelopes(records, None)]
    return len(heads)


if __name__ == "__main__":
    path, count = sys.argv[1], int(sys.argv[2])
    done = {"consumer": consumer_path, "publisher": publisher_path}[path](count)
    assert done == count, f"{done} of {count}"
