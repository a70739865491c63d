"""msgbus: a messaging backbone for distributed grid monitoring over STOMP brokers."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from msgbus.errors import MsgbusError

if TYPE_CHECKING:
    from msgbus.consume import Consumer
    from msgbus.publish import Publisher, publish_once

__version__ = "0.1.0"

# No ``msgbus.publish`` function: the name is the ``msgbus.publish`` subpackage, which
# would replace the function on the package as soon as it is imported.
__all__ = ["Consumer", "MsgbusError", "Publisher", "__version__", "publish_once"]

# Imported on first access: a probe that only publishes never loads the store layer.
_LAZY = {
    "Consumer": "msgbus.consume",
    "Publisher": "msgbus.publish",
    "publish_once": "msgbus.publish",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'msgbus' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
