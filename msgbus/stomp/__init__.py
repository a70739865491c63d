"""The STOMP protocol layer: frames and a sans-IO codec (no sockets)."""

from msgbus.stomp.codec import (
    HEARTBEAT,
    SUPPORTED_VERSIONS,
    FrameParser,
    Limits,
    Version,
    encode_acks,
    encode_headers,
    serialize,
)
from msgbus.stomp.frames import FRAME_TYPES, Frame, Heartbeat, make_frame
from msgbus.stomp.session import HeartBeats, Role, StompSession, ack_id_of

__all__ = [
    "FRAME_TYPES",
    "HEARTBEAT",
    "SUPPORTED_VERSIONS",
    "Frame",
    "FrameParser",
    "HeartBeats",
    "Heartbeat",
    "Limits",
    "Role",
    "StompSession",
    "Version",
    "ack_id_of",
    "encode_acks",
    "encode_headers",
    "make_frame",
    "serialize",
]
