"""The rendered ActiveMQ's STOMP+SSL connector, live: client certificates are required
when the topology has a truststore, and each refusal reaches the client named as such."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from msgbus.config import ConnectionConfig
from msgbus.errors import AuthenticationError
from msgbus.transport.connection import Connection
from msgbus.transport.url import BrokerURL
from tests.fixtures.activemq import ActiveMQ, _require_activemq
from tests.fixtures.pki import Pki

pytestmark = pytest.mark.activemq


@pytest.fixture(scope="module")
def tls_broker(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ActiveMQ]:
    _require_activemq()
    base = tmp_path_factory.mktemp("activemq-tls")
    keystore, truststore = pki.java_stores(base, "changeit")
    tls = {
        "keystore": str(keystore),
        "keystore_password": "changeit",
        "truststore": str(truststore),
        "truststore_password": "changeit",
    }
    broker = ActiveMQ(base, "tls", tls=tls)
    broker.start()
    try:
        yield broker
    finally:
        broker.kill()


def _connect(broker: ActiveMQ, **tls: Any) -> Connection:
    url = BrokerURL.model_validate(f"stomp+ssl://127.0.0.1:{broker.ssl_port}")
    conn = Connection(url, ConnectionConfig(brokers=[url], tls=tls, connect_timeout=10))
    conn.connect()
    return conn


def test_a_client_with_a_certificate_from_the_trusted_ca_gets_in(
    tls_broker: ActiveMQ, pki: Pki
) -> None:
    conn = _connect(tls_broker, ca_file=pki.ca, cert=pki.client_cert, key=pki.client_key)
    try:
        conn.send("/queue/tls.check", b"over TLS", receipt="r")
        conn.wait_for_receipt("r", 10)
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("client", "said"),
    [("none", "requires a client certificate"), ("stranger", "refused our client certificate")],
)
def test_a_refused_client_certificate_is_named(
    tls_broker: ActiveMQ, pki: Pki, client: str, said: str
) -> None:
    tls: dict[str, Path] = {"ca_file": pki.ca}
    if client == "stranger":
        tls |= {"cert": pki.stranger_cert, "key": pki.stranger_key}
    with pytest.raises(AuthenticationError, match=said):
        _connect(tls_broker, **tls).close()
