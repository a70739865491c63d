"""Options several commands share, defined once so their names and help agree."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

__all__ = [
    "broker_option",
    "config_option",
    "metrics_port_option",
    "metrics_textfile_option",
    "parse_duration",
    "size_option",
    "spool_option",
]

F = TypeVar("F", bound=Callable[..., Any])

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}

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

metrics_textfile_option: Callable[[F], F] = click.option(
    "--metrics-textfile",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the metrics to this file at the end, for node-exporter's textfile collector.",
)

size_option: Callable[[F], F] = click.option(
    "--size",
    type=click.IntRange(min=1),
    default=1024,
    show_default=True,
    help="Message body size in bytes.",
)

spool_option: Callable[[F], F] = click.option(
    "--spool",
    "spool_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Spool directory (default: publisher.spool_dir, per user).",
)


def broker_option(
    help: str = "stomp[+ssl]://[user:pass@]host:port; repeat for a failover list.",
) -> Callable[[F], F]:
    """``--broker URL`` (repeatable) into the ``brokers`` tuple."""
    return click.option("--broker", "brokers", multiple=True, metavar="URL", help=help)


def parse_duration(value: str | None) -> float | None:
    """Seconds of an ``--until`` value (90s, 30m, 2h, 7d); None for none."""
    if value is None:
        return None
    match = _DURATION.match(value.strip())
    if match is None:
        raise click.BadParameter(f"{value!r} is not a duration like 90s, 30m, 2h, 7d")
    return float(match.group(1)) * _SECONDS[match.group(2)]
