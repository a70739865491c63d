"""One message of the embedded broker in one queue, and its MESSAGE frame: the headers,
body and trailing NUL are encoded once per STOMP version and shared by the copies a
topic fans out, so a delivery only adds the subscription and ack headers.
"""

from __future__ import annotations

from msgbus.errors import LocalProtocolError
from msgbus.stomp import encode_headers

__all__ = ["Message"]


class Message:
    """One message in one queue. Copies for fan-out share headers, body and encodings."""

    __slots__ = ("_tails", "body", "headers", "persistent", "redeliveries", "seq")

    def __init__(
        self,
        headers: dict[str, str],
        body: bytes,
        persistent: bool,
        *,
        redeliveries: int = 0,
        seq: int = 0,
        tails: dict[str, bytes] | None = None,
    ) -> None:
        self.headers = headers
        self.body = body
        self.persistent = persistent
        self.redeliveries = redeliveries
        self.seq = seq  # row in the store, 0 when not stored
        self._tails = tails if tails is not None else {}

    @property
    def message_id(self) -> str:
        return self.headers["message-id"]

    def copy(self) -> Message:
        return Message(self.headers, self.body, self.persistent, tails=self._tails)

    def tail(self, version: str) -> bytes:
        """Headers, content-length, body and NUL of the MESSAGE frame, encoded once."""
        tail = self._tails.get(version)
        if tail is None:
            try:
                head = encode_headers("MESSAGE", self.headers, version)
            except LocalProtocolError:
                # An old-version consumer gets the headers its version can carry.
                head = b"".join(
                    _encodable({name: value}, version) for name, value in self.headers.items()
                )
            tail = b"%scontent-length:%d\n\n%s\0" % (head, len(self.body), self.body)
            self._tails[version] = tail
        return tail


def _encodable(headers: dict[str, str], version: str) -> bytes:
    try:
        return encode_headers("MESSAGE", headers, version)
    except LocalProtocolError:
        return b""
