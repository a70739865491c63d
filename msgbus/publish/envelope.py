"""An outgoing message as the publisher and the spool hold it."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from msgbus.stomp.frames import SendFrame

__all__ = ["ID_HEADER", "Envelope", "new_id"]

ID_HEADER = "msgbus-id"
"""Header with the publisher-assigned id; it never changes across retries and spooling,
so consumers can drop duplicates."""


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class Envelope:
    """Destination, STOMP headers and body of one message, plus its msgbus-id.

    ``headers`` hold neither the destination nor the id; :meth:`frame` adds both.
    """

    destination: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    msgbus_id: str = field(default_factory=new_id)

    @property
    def size(self) -> int:
        """Bytes this message takes (body plus headers), as the spool bound counts them."""
        return len(self.body) + sum(len(k) + len(v) for k, v in self.headers.items())

    def frame(self, extra: Mapping[str, str] | None = None) -> SendFrame:
        headers = {"destination": self.destination, **self.headers, ID_HEADER: self.msgbus_id}
        if extra:
            headers.update(extra)
        return SendFrame(headers, self.body)
