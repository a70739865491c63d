"""Options several commands share, defined once so their names and help agree."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

__all__ = ["broker_option", "config_option", "metrics_port_option"]

F = TypeVar("F", bound=Callable[..., Any])

config_option: Callable[[F], F] = click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="YAML configuration file (default: ./msgbus.yaml if present).",
)

metrics_port_option: Callable[[F], F] = click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve Prometheus metrics on this port while running.",
)


def broker_option(
    help: str = "stomp[+ssl]://[user:pass@]host:port; repeat for a failover list.",
) -> Callable[[F], F]:
    """``--broker URL`` (repeatable) into the ``brokers`` tuple."""
    return click.option("--broker", "brokers", multiple=True, metavar="URL", help=help)
