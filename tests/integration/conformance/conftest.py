"""One broker per parameter: the embedded broker, a real ActiveMQ, RabbitMQ's STOMP plugin."""

from __future__ import annotations

import uuid

import pytest

from msgbus.broker import BrokerThread
from msgbus.transport.url import BrokerURL
from tests.integration.conformance.clients import Target


@pytest.fixture(
    params=[
        "embedded",
        pytest.param("activemq", marks=pytest.mark.activemq),
        pytest.param("rabbitmq", marks=pytest.mark.rabbitmq),
    ]
)
def target(request: pytest.FixtureRequest) -> Target:
    if request.param == "embedded":
        broker: BrokerThread = request.getfixturevalue("shared_embedded_broker")
        return Target("embedded", "127.0.0.1", broker.port)
    if request.param == "activemq":
        amq = request.getfixturevalue("activemq")
        return Target("activemq", amq.host, amq.port, amq.user, amq.password)
    url = BrokerURL.model_validate(request.getfixturevalue("rabbitmq_stomp"))
    password = url.password.get_secret_value() if url.password else None
    return Target("rabbitmq", url.host, url.port, url.user, password)


@pytest.fixture
def name() -> str:
    """A destination name of this test alone (brokers are shared)."""
    return "conformance." + uuid.uuid4().hex[:10]
