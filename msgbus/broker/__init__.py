"""The embedded asyncio STOMP broker (queues, topics, durable subscriptions, SQLite)."""

from msgbus.broker.config import BrokerConfig, BrokerLimits, BrokerTLS, load_broker_config
from msgbus.broker.server import BrokerThread, EmbeddedBroker

__all__ = [
    "BrokerConfig",
    "BrokerLimits",
    "BrokerTLS",
    "BrokerThread",
    "EmbeddedBroker",
    "load_broker_config",
]
