"""A synchronous STOMP client connection on the project's sans-IO codec.

One background I/O thread per connection reads the socket, feeds the codec, keeps
heart-beats in both directions and queues received frames. It never runs user code:
callers take frames with :meth:`Connection.receive` on their own thread, so a slow
handler cannot starve heart-beats (the trap of stomp.py's receiver-thread listeners,
stomp.py #346/#351). Every wait is bounded.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Mapping

from msgbus.errors import (
    AuthenticationError,
    BrokerBusy,
    BrokerError,
    ConnectError,
    ConnectionLost,
    ProtocolError,
    TimeoutException,
)
from msgbus.stomp.codec import (
    HEARTBEAT,
    Limits,
    Version,
    encode_acks,
)
from msgbus.stomp.frames import (
    TRANSIENT_HEADER,
    ConnectedFrame,
    DisconnectFrame,
    ErrorFrame,
    Frame,
    Heartbeat,
    MessageFrame,
    ReceiptFrame,
    SendFrame,
    SubscribeFrame,
    UnsubscribeFrame,
)
from msgbus.stomp.session import HeartBeats, StompSession, ack_id_of, silence_limit
from msgbus.transport.settings import ConnectionConfig, TLSConfig
from msgbus.transport.url import BrokerURL

__all__ = ["Connection", "broker_error", "error_detail", "make_ssl_context", "tls_refusal"]

_RECV_BYTES = 256 * 1024


def make_ssl_context(tls: TLSConfig) -> ssl.SSLContext:
    """Client-side TLS context with an optional grid X.509 certificate and key."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ctx.check_hostname = tls.check_hostname
    # A certificate in ca_file is trusted as it stands, root or not (Python 3.13's default):
    # so a broker's own agent can trust exactly the certificate the broker serves.
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    try:
        if tls.ca_file or tls.ca_path:
            ctx.load_verify_locations(
                cafile=str(tls.ca_file) if tls.ca_file else None,
                capath=str(tls.ca_path) if tls.ca_path else None,
            )
        if tls.cert:
            password = tls.key_password.get_secret_value() if tls.key_password else None
            ctx.load_cert_chain(str(tls.cert), str(tls.key) if tls.key else None, password=password)
    except (OSError, ssl.SSLError) as exc:
        raise ConnectError(
            f"cannot load TLS material (cert={tls.cert}, key={tls.key}, ca_file={tls.ca_file}, "
            f"ca_path={tls.ca_path}): {exc}; check the paths and that the key matches the "
            "certificate"
        ) from None
    return ctx


# OpenSSL alert reasons by which a broker refuses our certificate, and what to say.
_CERT_ALERTS = {
    "CERTIFICATE_REQUIRED": "the broker requires a client certificate; set tls.cert and tls.key",
    "BAD_CERTIFICATE": "the broker refused our client certificate; check tls.cert",
    "UNKNOWN_CA": "the broker does not trust the CA of our client certificate",
    "CERTIFICATE_EXPIRED": "the broker says our client certificate has expired; renew tls.cert",
    "CERTIFICATE_REVOKED": "the broker says our client certificate is revoked",
    "CERTIFICATE_UNKNOWN": "the broker refused our client certificate (certificate unknown)",
    "ACCESS_DENIED": "the broker denied access to our client certificate",
}


# OpenSSL verify codes by which we refuse the broker's certificate, and what to say.
_UNTRUSTED = (
    "its certificate is from a CA we do not trust; set tls.ca_file or tls.ca_path to the "
    "CA that issued it"
)
_VERIFY_CODES = {
    2: _UNTRUSTED,  # unable to get issuer certificate
    18: _UNTRUSTED,  # self-signed certificate
    19: _UNTRUSTED,  # self-signed certificate in the chain
    20: _UNTRUSTED,  # unable to get local issuer certificate
    21: _UNTRUSTED,  # unable to verify the first certificate
    9: "its certificate is not valid yet; check the clocks",
    10: "its certificate has expired; the broker's operator must renew it",
    23: "its certificate has been revoked",
    62: "its certificate is for another host name; connect by a name it lists",
    64: "its certificate is for another address; connect by a name or address it lists",
}


def tls_refusal(url: BrokerURL, exc: BaseException) -> AuthenticationError | None:
    """The permanent TLS failures (a certificate refused on either side) as an
    AuthenticationError naming the cause; None for anything a retry may cure."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        meaning = _VERIFY_CODES.get(
            getattr(exc, "verify_code", 0), "its certificate is not trusted; check tls.ca_file"
        )
        return AuthenticationError(f"TLS with {url}: {meaning} ({exc.verify_message})")
    if not isinstance(exc, ssl.SSLError):
        return None
    reason = exc.reason or ""
    for alert, meaning in _CERT_ALERTS.items():
        if reason.endswith(alert):
            return AuthenticationError(f"TLS with {url}: {meaning} ({reason})")
    return None


def _closed_at_tls_login(url: BrokerURL, tls: TLSConfig) -> AuthenticationError:
    """A TLS 1.3 broker checks our certificate after the handshake, and some close the
    connection without an alert when they refuse it: the only sign is this silence."""
    cause = (
        "it probably refused our client certificate (tls.cert): check that the broker "
        "trusts its CA and that it has not expired"
        if tls.cert
        else "it probably requires a client certificate: set tls.cert and tls.key"
    )
    return AuthenticationError(
        f"{url} closed the TLS connection at login without answering; {cause}"
    )


class Connection:
    """One STOMP connection to one broker.

    Use :meth:`connect` first; then ``send``/``subscribe``/``ack`` from any one
    thread and :meth:`receive` to take MESSAGE, RECEIPT and ERROR frames.
    """

    def __init__(
        self,
        url: BrokerURL,
        settings: ConnectionConfig | None = None,
        *,
        client_id: str | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.url = url
        self.settings = settings or ConnectionConfig(brokers=[url])
        self.client_id = client_id or self.settings.client_id
        self._limits = limits or Limits()
        self._sock: socket.socket | None = None
        self._session = StompSession("client", limits=self._limits)
        self._write_lock = threading.Lock()
        self._cond = threading.Condition()
        self._inbox: collections.deque[Frame] = collections.deque()
        self._closed_reason: str | None = None
        self._thread: threading.Thread | None = None
        self._last_write = 0.0
        self._last_read = 0.0
        self._receipt_ids = itertools.count(1)
        self._stop = threading.Event()

    def __repr__(self) -> str:
        state = "open" if self.connected else "closed"
        return f"<Connection {self.url} {state}>"

    # -- life cycle -------------------------------------------------------------

    @property
    def version(self) -> Version:
        """The STOMP version agreed at login ("1.0" before)."""
        return self._session.version

    @property
    def server(self) -> str:
        """The broker's ``server`` header, e.g. ``ActiveMQ/5.17.2``."""
        return self._session.server

    @property
    def connected(self) -> bool:
        return self._sock is not None and self._closed_reason is None

    @property
    def closed_reason(self) -> str | None:
        """Why the connection closed (a lost broker, missed heart-beats); None while open."""
        return self._closed_reason

    def connect(self) -> ConnectedFrame:
        """Open the socket, log in and start the I/O thread.

        Raises ConnectError (unreachable, refused, TLS failure, login refused) or
        TimeoutException (no CONNECTED within ``connect_timeout``).
        """
        timeout = self.settings.connect_timeout
        deadline = time.monotonic() + timeout
        sock = self._open_socket(timeout)
        try:
            connected = self._handshake(sock, deadline)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        # Writes block at most this long: a broker that stops reading must not hang us.
        sock.settimeout(self.settings.receipt_timeout)
        now = time.monotonic()
        self._last_read = self._last_write = now
        self._thread = threading.Thread(
            target=self._io_loop, name=f"msgbus-io-{self.url.host}:{self.url.port}", daemon=True
        )
        self._thread.start()
        return connected

    def _open_socket(self, timeout: float) -> socket.socket:
        url = self.url
        try:
            raw = socket.create_connection((url.host, url.port), timeout=timeout)
        except TimeoutError:
            raise TimeoutException(
                f"no answer from {url} within {timeout:g} s; check the host and port, or "
                "raise connection.connect_timeout"
            ) from None
        except OSError as exc:
            raise ConnectError(
                f"cannot connect to {url}: {exc.strerror or exc}; is the broker running "
                "and the address right?"
            ) from None
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not url.tls:
            return raw
        ctx = make_ssl_context(self.settings.tls)
        try:
            return ctx.wrap_socket(raw, server_hostname=url.host)
        except (ssl.SSLError, OSError) as exc:
            raw.close()
            refusal = tls_refusal(url, exc)
            if refusal is not None:
                raise refusal from None
            raise ConnectError(
                f"TLS handshake with {url} failed: {exc}; check the CA (tls.ca_file/ca_path) "
                "and the client certificate"
            ) from None

    def _handshake(self, sock: socket.socket, deadline: float) -> ConnectedFrame:
        url, cfg = self.url, self.settings
        password = url.password or cfg.passcode
        connect = self._session.connect_frame(
            host=cfg.vhost or url.host,
            heartbeats=HeartBeats(send_ms=cfg.heartbeat_ms[0], receive_ms=cfg.heartbeat_ms[1]),
            login=url.user or cfg.login,
            passcode=password.get_secret_value() if password is not None else None,
            client_id=self.client_id,
        )
        try:
            sock.sendall(self._session.encode(connect))
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                sock.settimeout(remaining)
                data = sock.recv(_RECV_BYTES)
                if not data:
                    if url.tls:
                        raise _closed_at_tls_login(url, cfg.tls)
                    raise ConnectError(
                        f"{url} closed the connection during login; check that it speaks STOMP "
                        "on this port"
                    )
                for event in self._session.receive_data(data):
                    if isinstance(event, ConnectedFrame):
                        return event
                    if isinstance(event, ErrorFrame):
                        raise AuthenticationError(
                            f"{url} refused the login: {error_detail(event)}; check "
                            "the login and passcode (connection.login/passcode or user:pass@ in "
                            "the URL), the client-id and the virtual host (connection.vhost)"
                        )
        except TimeoutError:
            raise TimeoutException(
                f"{url} did not answer CONNECT within {cfg.connect_timeout:g} s"
            ) from None
        except ProtocolError as exc:
            raise ConnectError(f"{url} does not speak STOMP correctly: {exc}") from None
        except OSError as exc:
            # TLS 1.3 reports a refused client certificate at the first read, not in the
            # handshake.
            refusal = tls_refusal(url, exc)
            if refusal is not None:
                raise refusal from None
            raise ConnectError(f"connection to {url} failed during login: {exc}") from None

    def disconnect(self, timeout: float | None = None) -> None:
        """Polite DISCONNECT with a receipt, bounded by ``timeout``; always closes."""
        if not self.connected:
            self.close()
            return
        wait = self.settings.disconnect_timeout if timeout is None else timeout
        receipt = f"disconnect-{next(self._receipt_ids)}"
        try:
            self.write_frames([DisconnectFrame({"receipt": receipt})])
            self.wait_for_receipt(receipt, wait)
        except (ConnectionLost, TimeoutException):
            pass  # closing anyway; the broker will drop the session on socket close
        finally:
            self.close()

    def close(self, reason: str = "closed by the client") -> None:
        self._stop.set()
        self._mark_closed(reason)
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2)

    def __enter__(self) -> Connection:
        if self._sock is None:
            self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    # -- sending ----------------------------------------------------------------

    def write_frames(self, frames: Iterable[Frame]) -> None:
        """Serialize and write frames with one system call (the batching hot path)."""
        encode = self._session.encode
        data = b"".join(encode(frame) for frame in frames)
        self._write(data)

    def write_encoded(self, data: bytes) -> None:
        """Write frames already encoded for ``self.version`` (hot paths that reuse
        encoded header blocks, see ``msgbus.stomp.encode_headers``)."""
        self._write(data)

    def _write(self, data: bytes) -> None:
        sock = self._sock
        if sock is None or self._closed_reason is not None:
            raise ConnectionLost(
                f"connection to {self.url} is closed ({self._closed_reason or 'not connected'}); "
                "reconnect before sending"
            )
        try:
            with self._write_lock:
                sock.sendall(data)
                self._last_write = time.monotonic()
        except TimeoutError:
            self.close("write timed out")
            raise TimeoutException(
                f"{self.url} did not accept data for {self.settings.receipt_timeout:g} s; "
                "the broker may be blocked by flow control"
            ) from None
        except OSError as exc:
            self.close(f"write failed: {exc}")
            raise ConnectionLost(f"connection to {self.url} lost while sending: {exc}") from None

    def send(
        self,
        destination: str,
        body: bytes,
        headers: Mapping[str, str] | None = None,
        *,
        receipt: str | None = None,
    ) -> None:
        self.write_frames([self.send_frame(destination, body, headers, receipt=receipt)])

    @staticmethod
    def send_frame(
        destination: str,
        body: bytes,
        headers: Mapping[str, str] | None = None,
        *,
        receipt: str | None = None,
    ) -> SendFrame:
        frame_headers = {"destination": destination}
        if headers:
            frame_headers.update(headers)
        if receipt is not None:
            frame_headers["receipt"] = receipt
        return SendFrame(frame_headers, body)

    def subscribe(
        self,
        destination: str,
        *,
        id: str,
        ack: str = "auto",
        headers: Mapping[str, str] | None = None,
        receipt: bool = True,
    ) -> None:
        """SUBSCRIBE; by default waits for the broker's receipt so errors surface here."""
        frame_headers = {"destination": destination, "id": id, "ack": ack}
        if headers:
            frame_headers.update(headers)
        self._request(SubscribeFrame(frame_headers), receipt)

    def unsubscribe(
        self, *, id: str, headers: Mapping[str, str] | None = None, receipt: bool = True
    ) -> None:
        frame_headers = {"id": id}
        if headers:
            frame_headers.update(headers)
        self._request(UnsubscribeFrame(frame_headers), receipt)

    def _request(self, frame: Frame, receipt: bool) -> None:
        if not receipt:
            self.write_frames([frame])
            return
        receipt_id = f"req-{next(self._receipt_ids)}"
        frame.headers["receipt"] = receipt_id
        self.write_frames([frame])
        self.wait_for_receipt(receipt_id, self.settings.receipt_timeout)

    def ack_frame(self, message: MessageFrame, *, nack: bool = False) -> Frame:
        """The ACK (or NACK) for ``message`` in the negotiated protocol version."""
        return self._session.ack_frame(message, nack=nack)

    def ack(self, messages: Iterable[MessageFrame], *, nack: bool = False) -> None:
        """(N)ACK each message individually, all in one write."""
        if self.version == "1.2":
            ids = [ack_id_of(m, "1.2") for m in messages]
            self._write(encode_acks(ids, nack=nack))
        else:
            self.write_frames([self.ack_frame(m, nack=nack) for m in messages])

    # -- receiving --------------------------------------------------------------

    def receive(self, timeout: float | None) -> Frame | None:
        """Next MESSAGE, RECEIPT or ERROR frame, or None after ``timeout`` seconds.

        Raises ConnectionLost once the connection is closed and nothing is left.
        """
        with self._cond:
            if not self._inbox:
                self._cond.wait_for(lambda: self._inbox or self._closed_reason, timeout)
            if self._inbox:
                return self._inbox.popleft()
            if self._closed_reason is not None:
                raise ConnectionLost(f"connection to {self.url} lost: {self._closed_reason}")
            return None

    def receive_many(self, limit: int, timeout: float | None) -> list[Frame]:
        """Up to ``limit`` frames: waits ``timeout`` for the first, then takes what is queued."""
        first = self.receive(timeout)
        if first is None:
            return []
        out = [first]
        with self._cond:
            inbox = self._inbox
            while inbox and len(out) < limit:
                out.append(inbox.popleft())
        return out

    def wait_for_receipt(self, receipt_id: str, timeout: float) -> None:
        """Wait for one RECEIPT; frames that arrive meanwhile stay queued in order."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i, frame in enumerate(self._inbox):
                    if (
                        isinstance(frame, ReceiptFrame)
                        and frame.headers.get("receipt-id") == receipt_id
                    ):
                        del self._inbox[i]
                        return
                    if isinstance(frame, ErrorFrame):
                        del self._inbox[i]
                        raise broker_error(self.url, frame)
                if self._closed_reason is not None:
                    raise ConnectionLost(
                        f"connection to {self.url} lost before receipt {receipt_id}: "
                        f"{self._closed_reason}"
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutException(
                        f"no receipt {receipt_id} from {self.url} within {timeout:g} s; the "
                        "broker may be overloaded or the connection half-open"
                    )
                self._cond.wait(remaining)

    # -- I/O thread ---------------------------------------------------------------

    def _mark_closed(self, reason: str) -> None:
        with self._cond:
            if self._closed_reason is None:
                self._closed_reason = reason
            self._cond.notify_all()

    def _io_loop(self) -> None:
        sock = self._sock
        if sock is None:
            return
        session = self._session
        inbox = self._inbox
        cond = self._cond
        reason = "closed by the client"
        # poll, not select: select() fails for descriptors above 1023, which a process
        # holding many connections (or files) reaches.
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        try:
            while not self._stop.is_set():
                wait = self._heartbeat_due()
                pending = isinstance(sock, ssl.SSLSocket) and sock.pending() > 0
                if not pending and not poller.poll(wait * 1000):
                    continue
                try:
                    data = sock.recv(_RECV_BYTES)
                except (TimeoutError, ssl.SSLWantReadError):
                    continue
                if not data:
                    reason = "the broker closed the connection"
                    return
                self._last_read = time.monotonic()
                frames = [e for e in session.receive_data(data) if not isinstance(e, Heartbeat)]
                if frames:
                    with cond:
                        inbox.extend(frames)
                        cond.notify_all()
                    if any(isinstance(f, ErrorFrame) for f in frames):
                        # Brokers close after ERROR (STOMP spec); stop using this connection.
                        reason = "the broker sent ERROR"
                        return
        except ProtocolError as exc:
            reason = f"protocol error from the broker: {exc}"
        except (OSError, ValueError) as exc:
            reason = f"read failed: {exc}"
        finally:
            # Whatever ended the loop, release the socket now rather than when the
            # owner next calls close(): a lost peer must not leak descriptors.
            self.close(reason)

    def _heartbeat_due(self) -> float:
        """Send a heart-beat if one is due, check the peer's; return how long to wait."""
        now = time.monotonic()
        wait = 1.0
        send_interval = self._session.send_interval
        recv_interval = self._session.receive_interval
        if send_interval:
            due = self._last_write + send_interval
            if now >= due:
                # Another thread mid-sendall keeps the line busy anyway: never block here.
                if self._write_lock.acquire(blocking=False):
                    try:
                        if self._sock is not None:
                            self._sock.sendall(HEARTBEAT)
                            self._last_write = now
                    finally:
                        self._write_lock.release()
                due = now + send_interval
            wait = min(wait, max(due - now, 0.01))
        if recv_interval and now - self._last_read > silence_limit(recv_interval):
            raise OSError(
                f"no data or heart-beat from the broker for {now - self._last_read:.1f} s"
            )
        return wait


def error_detail(frame: ErrorFrame) -> str:
    """An ERROR's reason on one line: its message header and its body, which brokers use
    differently (RabbitMQ: "Bad CONNECT" above, why below; msgbus: the limit below)."""
    message = frame.headers.get("message", "").strip()
    body = " ".join(frame.body.decode("utf-8", "replace").split())[:300]
    if message and body and body != message:
        return f"{message}: {body}"
    return message or body or "no reason given"


# ActiveMQ's producer flow control with sendFailIfNoSpace (memory, store or temp usage
# full) refuses with this exception; its STOMP ERROR carries the name in the body.
_ACTIVEMQ_TRANSIENT = b"ResourceAllocationException"


def broker_error(url: BrokerURL, frame: ErrorFrame) -> BrokerError:
    """The ERROR as an exception: :class:`BrokerBusy` when the broker says the refusal
    is transient, :class:`BrokerError` (permanent) otherwise."""
    transient = frame.headers.get(TRANSIENT_HEADER) == "true" or (
        _ACTIVEMQ_TRANSIENT in frame.body
        or _ACTIVEMQ_TRANSIENT.decode() in frame.headers.get("message", "")
    )
    kind = BrokerBusy if transient else BrokerError
    return kind(
        f"{url} answered ERROR: {error_detail(frame)}", headers=dict(frame.headers), body=frame.body
    )
