"""Publishing from a directory queue as APEL's SSM sender does: its outgoing queue is a
dirq ``QueueSimple`` (APEL's unloader writes it), one message body per element.

Each element is sent as it is (no decoding: APEL records, WLCG text, any bytes),
S/MIME-signed when signing is configured and then encrypted when an encryption
certificate is, with the header SSM sends, ``empa-id`` (the element's name), and is
removed only once a broker confirmed it; draining stops at the first element not
confirmed, keeping the order.

Message ids are derived from the element (its name and content), so an element
published but not yet removed when the process died is published again under the same
id, and msgbus consumers drop the repeat.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from msgbus.errors import ConfigError
from msgbus.publish.envelope import Envelope
from msgbus.publish.publisher import Publisher
from msgbus.stomp.headers import EMPAID_HEADER
from msgbus.store.dirq import open_queue

__all__ = ["DirqReport", "publish_dirq"]


@dataclass(slots=True)
class DirqReport:
    elements: int = 0
    """Elements published and removed."""
    stopped: str | None = None
    """Why draining stopped before the end (a broker did not confirm)."""


def publish_dirq(pub: Publisher, path: Path) -> DirqReport:
    """Send every element of the QueueSimple at ``path``; see the module's docstring.
    A queue that cannot be read is a ConfigError naming it."""
    queue = open_queue(path)
    report = DirqReport()
    try:
        for name in queue:
            if not queue.lock(name):
                continue  # another sender has it
            removed = False
            try:
                data = queue.get(name)
                body = data if isinstance(data, bytes) else str(data).encode("utf-8")
                result = pub.send([_envelope(pub, name, body)])
                if result.confirmed != 1:
                    report.stopped = str(
                        result.error or "; ".join(result.rejected) or "not confirmed"
                    )
                    break
                queue.remove(name)
                removed = True
                report.elements += 1
            finally:
                if not removed:
                    queue.unlock(name)
        queue.purge()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the directory queue {path}: {exc}; is it a dirq QueueSimple "
            "(SSM's outgoing queue) that this user may write?"
        ) from None
    return report


def _envelope(pub: Publisher, name: str, body: bytes) -> Envelope:
    ident = hashlib.sha256(name.encode() + b"\0" + body).hexdigest()[:24]
    # Signed, then encrypted, as the publisher is configured to.
    env = pub.envelope(body, {EMPAID_HEADER: name})
    return Envelope(env.destination, env.body, env.headers, f"dirq-{ident}")
