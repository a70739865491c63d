"""STOMP frames as data: one class per command, no I/O.

Headers are a plain ``dict`` in wire order; when a header repeats on the wire the
first occurrence wins (STOMP 1.2 section "Repeated Header Entries"), which the parser
enforces. Bodies are bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

__all__ = [
    "CLIENT_COMMANDS",
    "FRAME_TYPES",
    "SERVER_COMMANDS",
    "TRANSIENT_HEADER",
    "AbortFrame",
    "AckFrame",
    "BeginFrame",
    "CommitFrame",
    "ConnectFrame",
    "ConnectedFrame",
    "DisconnectFrame",
    "ErrorFrame",
    "Frame",
    "Heartbeat",
    "MessageFrame",
    "NackFrame",
    "ReceiptFrame",
    "SendFrame",
    "StompFrame",
    "SubscribeFrame",
    "UnsubscribeFrame",
    "make_frame",
]


@dataclass(slots=True)
class Frame:
    """A STOMP frame. Subclasses fix ``command``."""

    command: ClassVar[str] = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)


@dataclass(slots=True, frozen=True)
class Heartbeat:
    """An EOL received between frames (a heart-beat)."""


@dataclass(slots=True)
class ConnectFrame(Frame):
    command: ClassVar[str] = "CONNECT"


@dataclass(slots=True)
class StompFrame(Frame):
    command: ClassVar[str] = "STOMP"


@dataclass(slots=True)
class ConnectedFrame(Frame):
    command: ClassVar[str] = "CONNECTED"


@dataclass(slots=True)
class SendFrame(Frame):
    command: ClassVar[str] = "SEND"


@dataclass(slots=True)
class SubscribeFrame(Frame):
    command: ClassVar[str] = "SUBSCRIBE"


@dataclass(slots=True)
class UnsubscribeFrame(Frame):
    command: ClassVar[str] = "UNSUBSCRIBE"


@dataclass(slots=True)
class AckFrame(Frame):
    command: ClassVar[str] = "ACK"


@dataclass(slots=True)
class NackFrame(Frame):
    command: ClassVar[str] = "NACK"


@dataclass(slots=True)
class BeginFrame(Frame):
    command: ClassVar[str] = "BEGIN"


@dataclass(slots=True)
class CommitFrame(Frame):
    command: ClassVar[str] = "COMMIT"


@dataclass(slots=True)
class AbortFrame(Frame):
    command: ClassVar[str] = "ABORT"


@dataclass(slots=True)
class DisconnectFrame(Frame):
    command: ClassVar[str] = "DISCONNECT"


@dataclass(slots=True)
class MessageFrame(Frame):
    command: ClassVar[str] = "MESSAGE"


@dataclass(slots=True)
class ReceiptFrame(Frame):
    command: ClassVar[str] = "RECEIPT"


@dataclass(slots=True)
class ErrorFrame(Frame):
    command: ClassVar[str] = "ERROR"


TRANSIENT_HEADER = "msgbus-transient"
"""An ERROR header of the embedded broker, "true" when the refusal's cause passes (a
queue at its limit, a full disk): the client should retry later, not give up."""


FRAME_TYPES: dict[str, type[Frame]] = {
    cls.command: cls
    for cls in (
        ConnectFrame,
        StompFrame,
        ConnectedFrame,
        SendFrame,
        SubscribeFrame,
        UnsubscribeFrame,
        AckFrame,
        NackFrame,
        BeginFrame,
        CommitFrame,
        AbortFrame,
        DisconnectFrame,
        MessageFrame,
        ReceiptFrame,
        ErrorFrame,
    )
}

CLIENT_COMMANDS = frozenset(
    {
        "CONNECT",
        "STOMP",
        "SEND",
        "SUBSCRIBE",
        "UNSUBSCRIBE",
        "ACK",
        "NACK",
        "BEGIN",
        "COMMIT",
        "ABORT",
        "DISCONNECT",
    }
)
SERVER_COMMANDS = frozenset({"CONNECTED", "MESSAGE", "RECEIPT", "ERROR"})


def make_frame(command: str, headers: dict[str, str] | None = None, body: bytes = b"") -> Frame:
    """Build the frame class for ``command`` (KeyError for an unknown command)."""
    return FRAME_TYPES[command](headers if headers is not None else {}, body)
