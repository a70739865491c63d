"""An outgoing message as the publisher and the spool hold it."""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from msgbus.stomp.codec import encode_headers

__all__ = ["ID_HEADER", "Envelope", "new_id"]

ID_HEADER = "msgbus-id"
"""Header with the publisher-assigned id; it never changes across retries and spooling,
so consumers can drop duplicates."""


_prefix = ""
_counter = itertools.count()


def _reseed() -> None:
    # 80 random bits per process (re-drawn in a forked child) plus a counter: unique
    # without a urandom call per message, which costs more than the rest of a SEND.
    global _prefix, _counter
    _prefix = uuid.uuid4().hex[:20]
    _counter = itertools.count()


_reseed()
os.register_at_fork(after_in_child=_reseed)


def new_id() -> str:
    """A new msgbus-id, unique across processes and hosts."""
    return f"{_prefix}-{next(_counter):x}"


@dataclass(frozen=True, slots=True)
class Envelope:
    """Destination, STOMP headers and body of one message, plus its msgbus-id.

    ``headers`` hold neither the destination nor the id; :meth:`encoded` adds both.
    """

    destination: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    msgbus_id: str = field(default_factory=new_id)
    _encoded: dict[str, bytes] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def size(self) -> int:
        """Bytes this message takes (body plus headers), as the spool bound counts them."""
        return len(self.body) + sum(len(k) + len(v) for k, v in self.headers.items())

    def encoded(self, version: str) -> bytes:
        """The SEND frame after its per-send headers: this message's headers, the
        content-length, the body and the NUL. Encoded once, reused by re-sends."""
        tail = self._encoded.get(version)
        if tail is None:
            headers = {"destination": self.destination, **self.headers, ID_HEADER: self.msgbus_id}
            head = encode_headers("SEND", headers, version)
            tail = b"%scontent-length:%d\n\n%s\0" % (head, len(self.body), self.body)
            self._encoded[version] = tail
        return tail
