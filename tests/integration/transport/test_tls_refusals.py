"""Each way TLS can refuse a connection is named as such (an AuthenticationError, never
retried quietly): against the embedded broker with TLS and client certificates, and the
client-certificate cases against the rendered ActiveMQ's STOMP+SSL connector too (a
truststore in the topology means client certificates are required)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from msgbus.broker import BrokerConfig
from msgbus.broker.config import BrokerTLS
from msgbus.broker.server import BrokerThread
from msgbus.config import ConnectionConfig
from msgbus.errors import AuthenticationError
from msgbus.transport.connection import Connection
from msgbus.transport.url import BrokerURL
from tests.chaos.harness import probe_text
from tests.fixtures.activemq import ActiveMQ
from tests.fixtures.pipeline import run_msgbus
from tests.fixtures.pki import Pki


def _broker(cert: Path, key: Path, client_ca: Path | None) -> BrokerThread:
    tls = BrokerTLS(cert=cert, key=key, client_ca=client_ca)
    return BrokerThread(BrokerConfig(port=0, tls=tls)).start()


@pytest.fixture
def broker(pki: Pki) -> Iterator[BrokerThread]:
    with _broker(pki.server_cert, pki.server_key, pki.ca) as thread:
        yield thread


@pytest.fixture(params=["embedded", pytest.param("activemq", marks=pytest.mark.activemq)])
def client_auth_port(request: pytest.FixtureRequest) -> int:
    """The STOMP+SSL port of a broker that requires client certificates from our CA."""
    if request.param == "embedded":
        thread: BrokerThread = request.getfixturevalue("broker")
        return thread.port
    amq: ActiveMQ = request.getfixturevalue("activemq_tls")
    assert amq.ssl_port is not None
    return amq.ssl_port


def _connect(port: int, **tls: Any) -> Connection:
    url = BrokerURL.model_validate(f"stomp+ssl://127.0.0.1:{port}")
    conn = Connection(url, ConnectionConfig(brokers=[url], tls=tls, connect_timeout=10))
    conn.connect()
    return conn


def test_a_trusted_client_gets_in(client_auth_port: int, pki: Pki) -> None:
    conn = _connect(client_auth_port, ca_file=pki.ca, cert=pki.client_cert, key=pki.client_key)
    try:
        conn.send("/queue/tls.check", b"over TLS", receipt="r")
        conn.wait_for_receipt("r", 10)
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("client", "said"),
    [
        ("none", "requires a client certificate"),
        ("stranger", "refused our client certificate"),
    ],
)
def test_a_client_certificate_the_broker_refuses_is_named(
    client_auth_port: int, pki: Pki, client: str, said: str
) -> None:
    tls: dict[str, Any] = {"ca_file": pki.ca}
    if client == "stranger":
        tls |= {"cert": pki.stranger_cert, "key": pki.stranger_key}
    with pytest.raises(AuthenticationError, match=said):
        _connect(client_auth_port, **tls)


@pytest.mark.parametrize(
    ("server", "client_tls", "said"),
    [
        ("good", {}, "from a CA we do not trust; set tls.ca_file"),
        ("expired", {"ca_file": "ca"}, "its certificate has expired"),
        ("wrong_host", {"ca_file": "ca"}, "its certificate is for another address"),
    ],
)
def test_a_broker_certificate_we_refuse_is_named(
    pki: Pki, server: str, client_tls: dict[str, str], said: str
) -> None:
    cert = {"good": pki.server_cert, "expired": pki.expired_cert}.get(server, pki.wrong_host_cert)
    tls: dict[str, Any] = {k: pki.ca for k in client_tls}
    tls |= {"cert": pki.client_cert, "key": pki.client_key}
    with (
        _broker(cert, pki.server_key, pki.ca) as thread,
        pytest.raises(AuthenticationError, match=said),
    ):
        _connect(thread.port, **tls)


def test_msgbus_publish_with_a_refused_client_certificate_exits_1_naming_it(
    broker: BrokerThread, pki: Pki, tmp_path: Path
) -> None:
    tls = {"ca_file": str(pki.ca), "cert": str(pki.stranger_cert), "key": str(pki.stranger_key)}
    config = tmp_path / "msgbus.yaml"
    config.write_text(json.dumps({"connection": {"tls": tls}}))  # JSON is YAML
    message = tmp_path / "probe.txt"
    message.write_text(probe_text("refused", 5))
    result = run_msgbus(
        ["publish", "--config", str(config), "--broker", f"stomp+ssl://127.0.0.1:{broker.port}",
         "--spool", str(tmp_path / "spool"), "--destination", "/queue/p", str(message)]
    )  # fmt: skip
    assert result.returncode == 1, result.stdout
    assert "refused our client certificate" in result.stdout
