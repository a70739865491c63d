"""Failover: connect to the first of a list of brokers that answers."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TypeVar

from msgbus.errors import AuthenticationError, ConnectError, TimeoutException
from msgbus.transport.connection import Connection
from msgbus.transport.settings import ConnectionConfig
from msgbus.transport.url import BrokerURL

__all__ = ["connect_first", "first_to_answer", "opener"]

T = TypeVar("T")


def opener(
    settings: ConnectionConfig, client_id: str | None = None
) -> Callable[[BrokerURL], Connection]:
    """Log in to one broker: what :func:`first_to_answer` tries on each of the list."""

    def open(url: BrokerURL) -> Connection:
        conn = Connection(url, settings, client_id=client_id)
        conn.connect()
        return conn

    return open


def connect_first(
    settings: ConnectionConfig,
    *,
    client_id: str | None = None,
    rng: random.Random | None = None,
) -> Connection:
    """The first broker of ``settings.brokers`` that accepts our login (see
    :func:`first_to_answer`)."""
    return first_to_answer(settings, opener(settings, client_id), rng=rng)


def first_to_answer(
    settings: ConnectionConfig,
    open: Callable[[BrokerURL], T],
    *,
    rng: random.Random | None = None,
) -> T:
    """``open`` each of ``settings.brokers`` in order (or shuffled when ``failover:
    random``) until one succeeds.

    A refused connection, a timeout or a refused login moves on to the next broker
    (stomp.py #333/#364 and apel/ssm #26 show how easily that step gets lost). Raises
    ConnectError naming every broker tried and why it failed.
    """
    order = list(settings.brokers)
    if settings.failover == "random":
        (rng or random.Random()).shuffle(order)
    failures: list[str] = []
    refused = False
    for url in order:
        try:
            return open(url)
        except (ConnectError, TimeoutException) as exc:
            failures.append(str(exc))
            refused = refused or isinstance(exc, AuthenticationError)
    tried = "\n  ".join(failures)
    if refused:
        # A refused login is permanent: the caller must see it, not retry it quietly.
        raise AuthenticationError(
            f"no broker accepted our credentials; tried:\n  {tried}\nfix the credentials"
        )
    raise ConnectError(
        f"no broker could be reached; tried:\n  {tried}\nstart a broker or fix connection.brokers"
    )
