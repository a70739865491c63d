"""Consuming: a durable subscription (or queue) into the relational store."""

from msgbus.consume.consumer import Consumer
from msgbus.consume.metrics import ConsumerMetrics
from msgbus.consume.subscription import Subscription

__all__ = ["Consumer", "ConsumerMetrics", "Subscription"]
