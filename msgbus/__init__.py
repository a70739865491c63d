"""msgbus: a messaging backbone for distributed grid monitoring over STOMP brokers."""

from msgbus.consume import Consumer
from msgbus.errors import MsgbusError
from msgbus.publish import Publisher

__version__ = "0.1.0"

__all__ = ["Consumer", "MsgbusError", "Publisher", "__version__"]
