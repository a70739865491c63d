"""Consuming: a durable subscription (or queue) into the relational store."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from msgbus.consume.consumer import Consumer
    from msgbus.consume.metrics import ConsumerMetrics
    from msgbus.consume.subscription import Subscription

__all__ = ["Consumer", "ConsumerMetrics", "Subscription"]

# Imported on first access: the bridges (nagios-bridge, watch) subscribe without the
# store, and importing one module of this package must not load SQLAlchemy.
_LAZY = {
    "Consumer": "msgbus.consume.consumer",
    "ConsumerMetrics": "msgbus.consume.metrics",
    "Subscription": "msgbus.consume.subscription",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'msgbus.consume' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
