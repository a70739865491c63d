"""The msgbus exception tree.

Every error msgbus raises derives from ``MsgbusError`` and says what happened and
what to do next. Errors of lower layers (sockets, SSL, SQLAlchemy drivers, stomp.py)
are mapped to this tree at the boundary where they occur, never leaked.

    MsgbusError
    ├── ConfigError                 bad configuration (YAML, environment, flags)
    ├── SchemaError                 a message does not fit its model
    │   ├── DecodeError             bytes/text could not be read (carries message/line/field)
    │   └── SignatureError          a signed body failed verification
    ├── ProtocolError               STOMP protocol violated
    │   ├── LocalProtocolError      we were about to send something invalid
    │   └── RemoteProtocolError     the peer sent something invalid
    │       └── FrameTooLarge       a frame, header or body exceeded a configured limit
    ├── TransportError              network-level trouble
    │   ├── ConnectError            no broker could be reached / login refused
    │   │   └── AuthenticationError the login or a certificate was refused: permanent
    │   ├── ConnectionLost          an established connection went away
    │   ├── BrokerError             the broker answered with an ERROR frame: permanent
    │   │   └── BrokerBusy          ... a transient one (queue full, disk full): retry later
    │   └── TimeoutException        a bounded wait expired (connect, receipt, disconnect)
    ├── PublishError                a message could not be delivered nor spooled
    │   └── SpoolFull               the local spool reached its size bound or its disk is full
    ├── StoreError                  the relational store failed
    │   └── StoreUnavailable        the database is away; retrying later may work
    ├── NetworkError                a broker-network topology is invalid or cannot run
    ├── BridgeError                 a bridge could not hand a message on (Nagios, Icinga)
    │   ├── BridgeRefused           the receiver refused this one message: report it, go on
    │   └── BridgeUnavailable       the receiver is away; retrying later may work
    └── ControlError                a control command was refused or not answered
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "BridgeError",
    "BridgeRefused",
    "BridgeUnavailable",
    "BrokerBusy",
    "BrokerError",
    "ConfigError",
    "ConnectError",
    "ConnectionLost",
    "ControlError",
    "DecodeError",
    "FrameTooLarge",
    "LocalProtocolError",
    "MsgbusError",
    "NetworkError",
    "ProtocolError",
    "PublishError",
    "RemoteProtocolError",
    "SchemaError",
    "SignatureError",
    "SpoolFull",
    "StoreError",
    "StoreUnavailable",
    "TimeoutException",
    "TransportError",
]


class MsgbusError(Exception):
    """Root of every msgbus error."""


class BridgeError(MsgbusError):
    """A bridge could not hand a message on to the system it feeds (Nagios' command file,
    Icinga's API)."""


class BridgeRefused(BridgeError):
    """The receiver refused one message for itself (an object it does not know): retrying
    cannot help, the others still go through."""


class BridgeUnavailable(BridgeError):
    """The receiver cannot be reached or failed for now (5xx): retrying later may work."""


class ConfigError(MsgbusError):
    """Configuration is invalid; the message names the source and the field."""


class SchemaError(MsgbusError):
    """A message does not fit its model."""


class DecodeError(SchemaError):
    """Input could not be decoded.

    ``message_no`` and ``line_no`` are 1-based positions in the input (None when not
    applicable); ``field`` names the offending key.
    """

    def __init__(
        self,
        reason: str,
        *,
        message_no: int | None = None,
        line_no: int | None = None,
        field: str | None = None,
    ) -> None:
        self.reason = reason
        self.message_no = message_no
        self.line_no = line_no
        self.field = field
        where = []
        if message_no is not None:
            where.append(f"message {message_no}")
        if line_no is not None:
            where.append(f"line {line_no}")
        if field is not None:
            where.append(f"field {field!r}")
        prefix = (", ".join(where) + ": ") if where else ""
        super().__init__(prefix + reason)


class SignatureError(SchemaError):
    """A signed body failed verification (bad signature, untrusted or unlisted signer)."""


class ProtocolError(MsgbusError):
    """The STOMP protocol was violated."""


class LocalProtocolError(ProtocolError):
    """We were about to send something the protocol forbids (a bug on our side)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes that are not valid STOMP."""


class FrameTooLarge(RemoteProtocolError):
    """A frame, a header or a body exceeded a configured limit.

    ``headers`` are the offending frame's, when they were read before the limit was hit
    (so that a broker can name the receipt of the message it refuses).
    """

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        self.headers = headers or {}
        super().__init__(message)


class TransportError(MsgbusError):
    """Network-level trouble talking to a broker."""


class ConnectError(TransportError):
    """No broker could be reached, or the broker refused the login."""


class AuthenticationError(ConnectError):
    """A broker refused the login or the client certificate, or its own certificate is
    not trusted: retrying cannot help until the credentials or the CA change."""


class ConnectionLost(TransportError):
    """An established broker connection went away."""


class BrokerError(TransportError):
    """The broker answered with an ERROR frame: it refused for good (too large, not
    authorized, invalid), unless it is a :class:`BrokerBusy`."""

    def __init__(
        self, message: str, *, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> None:
        self.headers = headers or {}
        self.body = body
        super().__init__(message)


class BrokerBusy(BrokerError):
    """The broker refused for now what it will take later: a queue at its limit, a full
    disk, memory short (the embedded broker's ``msgbus-transient`` ERROR, ActiveMQ's
    ``ResourceAllocationException``, RabbitMQ closing a STOMP connection with receipts
    outstanding when a queue's max-length refuses a publish). Hold the messages back
    (spooled) and retry with back-off; they are not rejected."""


class TimeoutException(TransportError):
    """A bounded wait expired (connect, receipt, disconnect)."""


class PublishError(MsgbusError):
    """A message could neither be delivered nor spooled."""


class SpoolFull(PublishError):
    """The local spool is at its size bound (drain it or raise ``spool.max_bytes``) or
    the disk it is on is full (free space on it)."""


class StoreError(MsgbusError):
    """The relational store failed."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or refused the connection; retrying later may work."""


class NetworkError(MsgbusError):
    """A broker-network topology is invalid or could not be run."""


class ControlError(MsgbusError):
    """A control command was refused or got no answer in time."""
