"""The transport layer: sockets, TLS, heart-beats and failover over the sans-IO codec."""

from msgbus.transport.backoff import Backoff
from msgbus.transport.connection import Connection, make_ssl_context
from msgbus.transport.failover import connect_first
from msgbus.transport.url import BrokerURL

__all__ = ["Backoff", "BrokerURL", "Connection", "connect_first", "make_ssl_context"]
