"""SUBSCRIBE headers per broker: durable topic, queue, virtual-topic queue."""

from __future__ import annotations

import pytest

from msgbus.consume.subscription import Subscription, broker_kind
from msgbus.errors import ConfigError


def test_broker_kind_from_the_server_header() -> None:
    assert broker_kind("ActiveMQ/5.17.2") == "activemq"
    assert broker_kind("RabbitMQ/3.12.1") == "rabbitmq"
    assert broker_kind("msgbus/0.1") == "activemq"  # the embedded broker's vocabulary
    assert broker_kind("") == "other"
    assert broker_kind("ActiveMQ-Artemis/2.31") == "other"


def test_activemq_durable_topic() -> None:
    sub = Subscription("/topic/grid.probe", "archiver")
    assert sub.durable
    assert sub.client_id(None) == "msgbus-archiver"
    assert sub.client_id("site-a") == "site-a"
    assert sub.headers("activemq", 500) == {
        "activemq.prefetchSize": "500",
        "activemq.subscriptionName": "archiver",
    }


def test_rabbitmq_durable_topic_keeps_a_stable_id() -> None:
    sub = Subscription("/topic/grid.probe", "archiver")
    assert sub.id == "archiver"  # RabbitMQ names the durable queue after it
    assert sub.headers("rabbitmq", 200) == {
        "prefetch-count": "200",
        "durable": "true",
        "auto-delete": "false",
    }


@pytest.mark.parametrize(
    "destination", ["/queue/probes", "/queue/Consumer.archive.VirtualTopic.probes"]
)
def test_queues_are_not_durable_subscriptions(destination: str) -> None:
    sub = Subscription(destination, "ignored-for-queues")
    assert not sub.durable
    assert sub.client_id(None) is None
    assert sub.headers("activemq", 50) == {"activemq.prefetchSize": "50"}


def test_unknown_broker_gets_both_prefetch_vocabularies() -> None:
    assert Subscription("/queue/q").headers("other", 7) == {
        "activemq.prefetchSize": "7",
        "prefetch-count": "7",
    }


def test_unknown_broker_gets_every_durable_vocabulary() -> None:
    sub = Subscription("/topic/grid.probe", "archiver")
    assert sub.client_id(None) == "msgbus-archiver"
    assert sub.headers("other", 7) == {
        "activemq.prefetchSize": "7",
        "prefetch-count": "7",
        "activemq.subscriptionName": "archiver",
        "durable-subscription-name": "archiver",
        "durable": "true",
        "auto-delete": "false",
        "persistent": "true",
    }


@pytest.mark.parametrize(("destination", "name"), [("probes", None), ("/topic/t", " ")])
def test_bad_subscriptions_are_config_errors(destination: str, name: str | None) -> None:
    with pytest.raises(ConfigError):
        Subscription(destination, name)
