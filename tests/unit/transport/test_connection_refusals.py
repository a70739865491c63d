"""Which connection failures and refusals are permanent (AuthenticationError, BrokerError)
or transient (BrokerBusy), and how they read."""

from __future__ import annotations

import socket
import ssl
import threading

import pytest

from msgbus.config import ConnectionConfig
from msgbus.errors import AuthenticationError, BrokerBusy, ConnectError
from msgbus.stomp.frames import ErrorFrame
from msgbus.transport.connection import Connection, broker_error, error_detail, tls_refusal
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


# ActiveMQ 5.17's STOMP ERROR for a SEND its producer flow control refused
# (sendFailIfNoSpaceAfterTimeout), as read from one: the exception below the reason.
_ACTIVEMQ_FULL = (
    {
        "message": "Usage Manager Memory Limit Wait Timeout. Stopping producer (ID:h-1:2:-1:1) "
        "to prevent flooding queue://fc.x. See "
        "http://activemq.apache.org/producer-flow-control.html for more info",
        "receipt-id": "r347",
    },
    b"javax.jms.ResourceAllocationException: Usage Manager Memory Limit Wait Timeout. "
    b"Stopping producer (ID:h-1:2:-1:1) to prevent flooding queue://fc.x.\n"
    b"\tat org.apache.activemq.broker.region.Queue$FlowControlTimeoutTask.run(Queue.java)\n",
)


@pytest.mark.parametrize(
    ("headers", "body", "transient"),
    [
        ({"message": "queue full", "msgbus-transient": "true"}, b"/queue/q holds 5", True),
        ({"message": "disk full: writing", "msgbus-transient": "true"}, b"", True),
        (*_ACTIVEMQ_FULL, True),
        ({"message": "limit exceeded"}, b"a transaction of 9 messages exceeds", False),
        ({"message": "frame too large"}, b"body of 5 MiB exceeds", False),
        ({"message": "User name [x] is not authorized to write to: queue://q"}, b"", False),
        ({"message": "queue full", "msgbus-transient": "false"}, b"", False),
    ],
)
def test_a_refusal_is_transient_only_when_the_broker_says_so(
    headers: dict[str, str], body: bytes, transient: bool
) -> None:
    error = broker_error(URL, ErrorFrame(headers, body))
    assert isinstance(error, BrokerBusy) is transient
    assert str(error).startswith(f"{URL} answered ERROR: ")


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
