"""The STOMP protocol layer: frames and a sans-IO codec (no sockets)."""

from msgbus.stomp.codec import (
    HEARTBEAT,
    SUPPORTED_VERSIONS,
    FrameParser,
    Limits,
    encode_acks,
    encode_headers,
    serialize,
)
from msgbus.stomp.frames import FRAME_TYPES, Frame, Heartbeat, make_frame

__all__ = [
    "FRAME_TYPES",
    "HEARTBEAT",
    "SUPPORTED_VERSIONS",
    "Frame",
    "FrameParser",
    "Heartbeat",
    "Limits",
    "encode_acks",
    "encode_headers",
    "make_frame",
    "serialize",
]
