"""An outgoing message as the publisher and the spool hold it."""

from __future__ import annotations

import itertools
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from msgbus.schema.body import HEADER_RECORD_COUNT
from msgbus.stomp.codec import encode_headers
from msgbus.stomp.headers import ID_HEADER

__all__ = ["ID_HEADER", "Envelope", "new_id"]

_ID_NAME = ID_HEADER.encode()


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


# Publishers send to a few destinations: their encoded header lines are kept (bounded).
_DESTINATION_LINES: dict[tuple[str, str], bytes] = {}
_PLAIN_ID = re.compile(r"[A-Za-z0-9_.-]+")


def _encode_head(env: Envelope, version: str) -> bytes:
    headers = env.headers
    if "destination" in headers or ID_HEADER in headers:
        # Ours win over the caller's (the general, slower path).
        merged = {**headers, "destination": env.destination, ID_HEADER: env.msgbus_id}
        lines = encode_headers("SEND", merged, version)
    else:
        key = (env.destination, version)
        destination = _DESTINATION_LINES.get(key)
        if destination is None:
            if len(_DESTINATION_LINES) >= 1024:
                _DESTINATION_LINES.clear()
            destination = encode_headers("SEND", {"destination": env.destination}, version)
            _DESTINATION_LINES[key] = destination
        if _PLAIN_ID.fullmatch(env.msgbus_id):  # ours always are: nothing to escape
            ident = b"%s:%s\n" % (_ID_NAME, env.msgbus_id.encode())
        else:
            ident = encode_headers("SEND", {ID_HEADER: env.msgbus_id}, version)
        lines = destination + (encode_headers("SEND", headers, version) if headers else b"") + ident
    return b"%scontent-length:%d\n\n" % (lines, len(env.body))


@dataclass(slots=True)
class Envelope:
    """Destination, STOMP headers and body of one message, plus its msgbus-id.

    ``headers`` hold neither the destination nor the id; :meth:`head` adds both.
    Treat an envelope as immutable: its encoded head is cached.
    """

    destination: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    msgbus_id: str = field(default_factory=new_id)
    _head: bytes = field(default=b"", init=False, repr=False, compare=False)
    _head_version: str = field(default="", init=False, repr=False, compare=False)

    @property
    def records(self) -> int:
        """Messages in the body: its recordCount header (several when packed), else 1."""
        count = self.headers.get(HEADER_RECORD_COUNT, "1")
        return int(count) if count.isdigit() else 1

    @property
    def size(self) -> int:
        """Bytes this message takes (body plus headers), as the spool bound counts them."""
        return len(self.body) + sum(len(k) + len(v) for k, v in self.headers.items())

    def head(self, version: str) -> bytes:
        """This message's header lines, content-length and the blank line, to follow
        the per-send headers of a SEND frame (body and NUL come after). Encoded once,
        reused by re-sends."""
        if self._head_version != version:
            self._head = _encode_head(self, version)
            self._head_version = version
        return self._head

    def frame_parts(self, send: bytes, version: str) -> tuple[bytes, bytes, bytes, bytes]:
        """The SEND frame as parts for one ``b"".join`` (the body is copied once):
        ``send`` is the command line and per-send headers."""
        return send, self.head(version), self.body, b"\0"
