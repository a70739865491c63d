"""Publishing from a directory queue (``dirq`` QueueSimple), as stompclt and APEL's SSM
senders do: each element is a message body in WLCG text or JSON; it is validated,
published, and removed only once a broker confirmed every message in it.

Message ids are derived from the element (its name and content), so an element
published but not yet removed when the process died is published again under the same
ids, and consumers drop the repeats. An element with an invalid message stays in the
queue (reported; nothing of it is sent), and draining stops at the first element a
broker did not confirm, keeping the order.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

from msgbus.publish.envelope import Envelope
from msgbus.publish.publisher import Publisher
from msgbus.schema.body import encode_body
from msgbus.schema.registry import model_for
from msgbus.schema.stream import read_stream
from msgbus.store.dirq import open_queue

__all__ = ["DirqReport", "publish_dirq"]


@dataclass(slots=True)
class DirqReport:
    elements: int = 0
    """Elements published and removed."""
    confirmed: int = 0
    invalid: list[str] = field(default_factory=list)
    """One line per element left in the queue because a message in it is invalid."""
    stopped: str | None = None
    """Why draining stopped before the end (a broker did not confirm)."""


def publish_dirq(pub: Publisher, path: Path, message_class: str) -> DirqReport:
    queue = open_queue(path)
    model = model_for(message_class)
    report = DirqReport()
    for name in queue:
        if not queue.lock(name):
            continue  # another sender has it
        removed = False
        try:
            data = queue.get(name)
            raw = data if isinstance(data, bytes) else str(data).encode("utf-8")
            decoded = list(read_stream(io.BytesIO(raw), model))
            bad = [d.reason for d in decoded if d.message is None]
            if bad:
                report.invalid.append(f"element {name}: {'; '.join(bad)[:300]}")
                continue
            ident = hashlib.sha256(name.encode() + b"\0" + raw).hexdigest()[:24]
            envelopes = []
            for i, d in enumerate(decoded):
                assert d.message is not None
                body, headers = encode_body(d.message, pub.options.format)
                env = pub.envelope(body, headers)  # signed when signing is configured
                envelopes.append(
                    Envelope(env.destination, env.body, env.headers, f"dirq-{ident}-{i}")
                )
            result = pub.send(envelopes)
            report.confirmed += result.confirmed
            if result.confirmed != len(envelopes):
                report.stopped = str(result.error or "; ".join(result.rejected) or "not confirmed")
                break
            queue.remove(name)
            removed = True
            report.elements += 1
        finally:
            if not removed:
                queue.unlock(name)
    queue.purge()
    return report
