"""msgbus: a messaging backbone for distributed grid monitoring over STOMP brokers."""

from msgbus.errors import MsgbusError

__version__ = "0.1.0"

__all__ = ["MsgbusError", "__version__"]
