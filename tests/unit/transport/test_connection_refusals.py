"""Which connection failures are permanent (AuthenticationError) and how they read."""

from __future__ import annotations

import socket
import ssl
import threading

import pytest

from msgbus.config import ConnectionConfig
from msgbus.errors import AuthenticationError, ConnectError
from msgbus.stomp.frames import ErrorFrame
from msgbus.transport.connection import Connection, error_detail, tls_refusal
from msgbus.transport.url import BrokerURL

URL = BrokerURL(host="mq.example.org", port=61614, tls=True)


def _ssl_error(reason: str) -> ssl.SSLError:
    exc = ssl.SSLError(1, f"[SSL: {reason}] alert")
    exc.reason = reason
    return exc


@pytest.mark.parametrize(
    ("reason", "says"),
    [
        ("TLSV13_ALERT_CERTIFICATE_REQUIRED", "requires a client certificate"),
        ("SSLV3_ALERT_BAD_CERTIFICATE", "refused our client certificate"),
        ("TLSV1_ALERT_UNKNOWN_CA", "does not trust the CA"),
        ("SSLV3_ALERT_CERTIFICATE_EXPIRED", "has expired"),
    ],
)
def test_a_refused_client_certificate_is_named(reason: str, says: str) -> None:
    refusal = tls_refusal(URL, _ssl_error(reason))
    assert isinstance(refusal, AuthenticationError)
    assert says in str(refusal) and "mq.example.org" in str(refusal)


def test_an_untrusted_broker_certificate_is_named() -> None:
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.verify_message = "unable to get local issuer certificate"
    exc.verify_code = 20
    refusal = tls_refusal(URL, exc)
    assert refusal is not None
    assert "from a CA we do not trust" in str(refusal)
    assert "(unable to get local issuer certificate)" in str(refusal)


@pytest.mark.parametrize(
    "exc", [_ssl_error("UNEXPECTED_EOF_WHILE_READING"), ConnectionResetError(104, "reset")]
)
def test_transient_failures_are_not_refusals(exc: OSError) -> None:
    assert tls_refusal(URL, exc) is None


@pytest.mark.parametrize(
    ("headers", "body", "detail"),
    [
        ({"message": "Bad CONNECT"}, b"Access refused for user 'guest'\n", "Bad CONNECT: Access"),
        (
            {"message": "frame too large"},
            b"body of 5 bytes\nexceeds",
            "frame too large: body of 5 bytes exceeds",
        ),
        ({"message": "same"}, b"same", "same"),
        ({}, b"", "no reason given"),
    ],
)
def test_error_detail_joins_message_and_body(
    headers: dict[str, str], body: bytes, detail: str
) -> None:
    assert error_detail(ErrorFrame(headers, body)).startswith(detail)


def test_a_version_that_was_not_offered_is_refused_at_login() -> None:
    """A peer answering 1.3 used to kill the I/O thread later with a KeyError."""
    server = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        peer, _ = server.accept()
        with peer:
            peer.recv(4096)
            peer.sendall(b"CONNECTED\nversion:1.3\n\n\0")
            peer.recv(4096)  # until the client hangs up

    threading.Thread(target=answer, daemon=True).start()
    url = BrokerURL(host="127.0.0.1", port=server.getsockname()[1])
    with pytest.raises(ConnectError, match=r"version '1.3', which was not offered"):
        Connection(url, ConnectionConfig(brokers=[url])).connect()
    server.close()
