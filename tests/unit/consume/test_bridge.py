"""The bridge's run loop without a broker: what a broker redelivers after a reconnect is
acknowledged, not submitted to Nagios a second time."""

from __future__ import annotations

import time
from collections import deque
from typing import cast

import pytest

from msgbus.consume.bridge import Bridge
from msgbus.consume.subscription import Subscription
from msgbus.errors import ConnectionLost
from msgbus.stomp.frames import Frame, MessageFrame
from msgbus.transport.connection import Connection
from msgbus.transport.settings import ConnectionConfig
from msgbus.transport.url import BrokerURL


class Redelivering:
    """Hands out queued frames; receive() past the end says the broker went away."""

    url = BrokerURL.model_validate("stomp://mq1:61613")

    def __init__(self, frames: list[MessageFrame]) -> None:
        self.frames = deque(frames)
        self.acked: list[str] = []

    def receive(self, timeout: float | None) -> Frame | None:
        if not self.frames:
            raise ConnectionLost("connection to stomp://mq1:61613 lost: the broker closed it")
        return self.frames.popleft()

    def ack(self, messages: list[MessageFrame]) -> None:
        self.acked += [m.headers["message-id"] for m in messages]


def _frame(message_id: str, msgbus_id: str | None) -> MessageFrame:
    headers = {"message-id": message_id, "destination": "/topic/probes"}
    if msgbus_id is not None:
        headers["msgbus-id"] = msgbus_id
    return MessageFrame(headers, b"")


def _bridge(submitted: list[str]) -> Bridge:
    def submit(frame: MessageFrame) -> int:
        submitted.append(frame.headers["message-id"])
        return 1

    return Bridge(
        ConnectionConfig(),
        Subscription("/topic/probes", "nagios"),
        submit,
        target="nagios.cmd",
        stop_at=time.monotonic() + 60,
    )


def test_a_redelivery_of_a_submitted_message_is_acknowledged_not_submitted() -> None:
    submitted: list[str] = []
    bridge = _bridge(submitted)
    first = Redelivering([_frame("m1", "a-1"), _frame("m2", "a-2")])
    again = Redelivering([_frame("m2-again", "a-2"), _frame("m3", "a-3")])
    for conn in (first, again):  # the broker restarted in between
        with pytest.raises(ConnectionLost):
            bridge._serve(cast(Connection, conn))
    assert submitted == ["m1", "m2", "m3"]
    assert first.acked == ["m1", "m2"] and again.acked == ["m2-again", "m3"]
    assert bridge.submitted == 3


def test_messages_without_a_msgbus_id_are_always_submitted() -> None:
    submitted: list[str] = []
    bridge = _bridge(submitted)
    conn = Redelivering([_frame("m1", None), _frame("m1", None)])
    with pytest.raises(ConnectionLost):
        bridge._serve(cast(Connection, conn))
    assert submitted == ["m1", "m1"]
