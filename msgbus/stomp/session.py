"""The STOMP session rules, sans-IO: one implementation for clients and the broker.

A :class:`StompSession` holds what both ends must agree on, in the spirit of h11's
``Connection``: the role, the negotiated version (which governs header escaping and
the ACK headers), the heart-beat intervals and the "CONNECT first" state. It takes
bytes and gives frames (:meth:`receive_data`), builds and answers CONNECT, and never
touches a socket: the client transport, the embedded broker and the benchmark clients
do the I/O. Anything invalid the peer sends surfaces as ``RemoteProtocolError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from msgbus.errors import RemoteProtocolError
from msgbus.stomp.codec import SUPPORTED_VERSIONS, FrameParser, Limits, Version, serialize
from msgbus.stomp.frames import (
    AckFrame,
    ConnectedFrame,
    ConnectFrame,
    Frame,
    Heartbeat,
    MessageFrame,
    NackFrame,
    StompFrame,
)

__all__ = ["HeartBeats", "Role", "StompSession", "ack_id_of", "silence_limit"]

# A peer is declared dead after twice its heart-beat interval plus a grace: a beat sent
# on time can arrive late (network, a JVM pause), and the spec leaves the tolerance to
# implementations; exactly twice the interval fails a peer whose beat is one tick late.
_SILENCE_FACTOR = 2.0
_SILENCE_GRACE = 2.0

Role = Literal["client", "server"]


@dataclass(frozen=True, slots=True, kw_only=True)
class HeartBeats:
    """A ``heart-beat`` header: ``send_ms`` = the shortest interval at which its side can
    send beats, ``receive_ms`` = the interval at which it wants them (0: never)."""

    send_ms: int = 0
    receive_ms: int = 0

    @classmethod
    def parse(cls, value: str | None) -> HeartBeats:
        if value is None:
            return cls()
        try:
            send, receive = (int(v) for v in value.split(","))
        except ValueError:
            raise RemoteProtocolError(
                f"heart-beat header {value[:40]!r} must be two integers, e.g. 10000,10000"
            ) from None
        if send < 0 or receive < 0:
            raise RemoteProtocolError(f"heart-beat values must not be negative: {value[:40]!r}")
        return cls(send_ms=send, receive_ms=receive)

    def header(self) -> str:
        return f"{self.send_ms},{self.receive_ms}"

    def agree(self, peer: HeartBeats) -> tuple[float, float]:
        """(seconds between the beats we send, seconds between the beats we get); 0 = none,
        as STOMP 1.1 section "Heart-beating" has both ends compute them."""
        send = max(self.send_ms, peer.receive_ms) if self.send_ms and peer.receive_ms else 0
        receive = max(self.receive_ms, peer.send_ms) if self.receive_ms and peer.send_ms else 0
        return send / 1000, receive / 1000


def silence_limit(interval: float) -> float:
    """Seconds without data or a beat after which a peer that promised a beat every
    ``interval`` seconds is dead (0: heart-beats are off, never)."""
    return interval * _SILENCE_FACTOR + _SILENCE_GRACE if interval else 0.0


def _known(version: str, versions: tuple[Version, ...]) -> Version | None:
    for known in versions:
        if version == known:
            return known
    return None


def ack_id_of(message: MessageFrame, version: Version) -> str:
    """The value a client's ACK of ``message`` names (``ack`` since 1.2, else its id)."""
    h = message.headers
    return h.get("ack", h.get("message-id", "")) if version == "1.2" else h.get("message-id", "")


class StompSession:
    """One end of a STOMP connection: ``role`` is "client" or "server"."""

    def __init__(self, role: Role, *, limits: Limits | None = None) -> None:
        self.role: Role = role
        # Until CONNECTED, frames are read and written like STOMP 1.0 (nothing escaped).
        self.parser = FrameParser(role=role, version="1.0", limits=limits)
        self.version: Version = "1.0"
        self.connected = False
        self.server = ""  # the peer broker's server header (client side)
        self.send_interval = 0.0
        self.receive_interval = 0.0
        self._offered: tuple[Version, ...] = SUPPORTED_VERSIONS
        self._heartbeats = HeartBeats()

    # -- both ends --------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Frame | Heartbeat]:
        """Frames and heart-beats in ``data``; a client negotiates on CONNECTED here.

        Raises RemoteProtocolError for anything invalid (malformed bytes, a frame too
        large, a CONNECTED of a version that was not offered, a bad heart-beat header).
        """
        events = self.parser.feed(data)
        if self.role == "client" and not self.connected:
            # A broker sends nothing but heart-beats after CONNECTED until we send again,
            # so nothing else in this read needed the negotiated version's unescaping.
            for event in events:
                if isinstance(event, ConnectedFrame):
                    self._negotiate(event)
                    break
        return events

    def encode(self, frame: Frame) -> bytes:
        return serialize(frame, self.version)

    # -- client -----------------------------------------------------------------------

    def connect_frame(
        self,
        *,
        host: str,
        heartbeats: HeartBeats,
        login: str | None = None,
        passcode: str | None = None,
        client_id: str | None = None,
    ) -> ConnectFrame:
        """The CONNECT to send first, offering every version msgbus speaks."""
        headers = {
            "accept-version": ",".join(self._offered),
            "host": host,
            "heart-beat": heartbeats.header(),
        }
        if login is not None:
            headers["login"] = login
        if passcode is not None:
            headers["passcode"] = passcode
        if client_id:
            headers["client-id"] = client_id
        self._heartbeats = heartbeats
        return ConnectFrame(headers)

    def _negotiate(self, frame: ConnectedFrame) -> None:
        version = _known(frame.headers.get("version", "1.0"), self._offered)
        if version is None:
            # Parsing frames of a version we did not offer would fail later, in the I/O
            # thread, as a mysterious "closed by the client".
            raise RemoteProtocolError(
                f"the broker answered with STOMP version {frame.headers['version'][:20]!r}, "
                "which was not "
                f"offered ({', '.join(self._offered)}); is it a STOMP broker?"
            )
        try:
            theirs = HeartBeats.parse(frame.headers.get("heart-beat"))
        except RemoteProtocolError:
            theirs = HeartBeats()  # a broker's odd header: no heart-beats rather than no link
        self._agreed(version, theirs)
        self.server = frame.headers.get("server", "")

    def ack_frame(self, message: MessageFrame, *, nack: bool = False) -> Frame:
        """The ACK (or NACK) of ``message`` with the headers the agreed version requires."""
        name = "id" if self.version == "1.2" else "message-id"
        headers = {name: ack_id_of(message, self.version)}
        if self.version == "1.1":
            headers["subscription"] = message.headers.get("subscription", "")
        return NackFrame(headers) if nack else AckFrame(headers)

    # -- server -----------------------------------------------------------------------

    def check_order(self, frame: Frame) -> None:
        """CONNECT first, and only once."""
        is_connect = isinstance(frame, ConnectFrame | StompFrame)
        if not self.connected and not is_connect:
            raise RemoteProtocolError(f"{frame.command} before CONNECT: send CONNECT first")
        if self.connected and is_connect:
            raise RemoteProtocolError("already connected: send CONNECT only once per connection")

    def common_version(self, frame: Frame) -> Version:
        """The highest version both sides speak; RemoteProtocolError if there is none."""
        offered = {v.strip() for v in frame.headers.get("accept-version", "1.0").split(",")}
        common = [v for v in SUPPORTED_VERSIONS if v in offered]
        if not common:
            raise RemoteProtocolError(
                f"unsupported protocol version(s) {','.join(sorted(offered))[:60]}: this "
                f"broker speaks {','.join(SUPPORTED_VERSIONS)}"
            )
        return common[-1]

    def accept(
        self, frame: Frame, *, heartbeats: HeartBeats, headers: dict[str, str]
    ) -> ConnectedFrame:
        """Agree on version and heart-beats for ``frame`` (a CONNECT) and return the
        CONNECTED to send, with ``headers`` (server, session) added."""
        self.check_order(frame)
        version = self.common_version(frame)
        theirs = HeartBeats.parse(frame.headers.get("heart-beat"))
        self._heartbeats = heartbeats
        self._agreed(version, theirs)
        return ConnectedFrame({"version": version, "heart-beat": heartbeats.header(), **headers})

    @staticmethod
    def acked_id(frame: Frame, version: Version) -> str:
        """The message an ACK/NACK names in ``version``; RemoteProtocolError if missing."""
        name = "id" if version == "1.2" else "message-id"
        value = frame.headers.get(name)
        if value is None:
            article = "an" if name == "id" else "a"
            raise RemoteProtocolError(
                f"{frame.command} without {article} {name} header (STOMP {version})"
            )
        return value

    # -- shared -----------------------------------------------------------------------

    def _agreed(self, version: Version, theirs: HeartBeats) -> None:
        self.version = version
        self.parser.version = version
        self.connected = True
        self.send_interval, self.receive_interval = self._heartbeats.agree(theirs)
