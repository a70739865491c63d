"""Failover: connect to the first broker of a list that answers."""

from __future__ import annotations

import random

from msgbus.errors import AuthenticationError, ConnectError, TimeoutException
from msgbus.transport.connection import Connection
from msgbus.transport.settings import ConnectionConfig

__all__ = ["connect_first"]


def connect_first(
    settings: ConnectionConfig,
    *,
    client_id: str | None = None,
    rng: random.Random | None = None,
) -> Connection:
    """Try ``settings.brokers`` in order (or shuffled when ``failover: random``).

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
        conn = Connection(url, settings, client_id=client_id)
        try:
            conn.connect()
        except (ConnectError, TimeoutException) as exc:
            failures.append(str(exc))
            refused = refused or isinstance(exc, AuthenticationError)
            continue
        return conn
    tried = "\n  ".join(failures)
    if refused:
        # A refused login is permanent: the caller must see it, not retry it quietly.
        raise AuthenticationError(
            f"no broker accepted our credentials; tried:\n  {tried}\nfix the credentials"
        )
    raise ConnectError(
        f"no broker could be reached; tried:\n  {tried}\nstart a broker or fix connection.brokers"
    )
