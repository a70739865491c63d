"""The receive loop of the commands that follow a destination (watch, nagios-bridge)."""

from __future__ import annotations

import time
from collections.abc import Iterator

from msgbus.stomp.frames import ErrorFrame, MessageFrame
from msgbus.stomp.headers import SYNC_HEADER
from msgbus.transport.connection import Connection, broker_error

__all__ = ["message_frames"]


def message_frames(conn: Connection, stop_at: float | None) -> Iterator[MessageFrame]:
    """The MESSAGE frames ``conn`` receives until ``stop_at`` (``time.monotonic()``; None:
    for ever), publishers' sync records left out; an ERROR frame raises BrokerError."""
    while True:
        wait = 1.0 if stop_at is None else stop_at - time.monotonic()
        if wait <= 0:
            return
        frame = conn.receive(min(wait, 1.0))
        if isinstance(frame, ErrorFrame):
            raise broker_error(conn.url, frame)
        if isinstance(frame, MessageFrame) and SYNC_HEADER not in frame.headers:
            yield frame
