"""``msgbus broker``: run the embedded STOMP broker (the process itself: broker_run)."""

from __future__ import annotations

from pathlib import Path

import click

from msgbus.cli.options import config_option, metrics_port_option


@click.group()
def broker() -> None:
    """The embedded STOMP broker (queues, topics, durable subscriptions)."""


@broker.command()
@click.option("--host", default=None, help="Address to listen on [default: 127.0.0.1].")
@click.option("--port", type=int, default=None, help="STOMP port, 0 for any [default: 61613].")
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory of the SQLite store; without it persistent messages live in memory only.",
)
@click.option(
    "--broker-config",
    "broker_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="YAML file with the broker's settings (users, permissions, tls, limits, ...); "
    "flags override it.",
)
@config_option
@click.option("--name", default=None, help="Broker name, used in message ids and metrics.")
@metrics_port_option
@click.option(
    "--presence/--no-presence",
    default=True,
    help="Announce the broker for `msgbus status` and answer control requests, with the "
    "control settings of --config (msgbus.yaml, MSGBUS_* environment). Unless that sets "
    "connection.tls and connection.login, the agent uses the broker's own certificate and "
    "a login of its own.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log connections and errors.")
def serve(
    host: str | None,
    port: int | None,
    data_dir: Path | None,
    broker_file: Path | None,
    config_file: Path | None,
    name: str | None,
    metrics_port: int | None,
    presence: bool,
    verbose: bool,
) -> None:
    """Run the broker until interrupted (Ctrl-C or SIGTERM)."""
    # Imported here: `msgbus broker --help` loads neither the broker nor asyncio; frozen
    # out of the collector's way as the command modules are.
    from msgbus.cli.broker_run import run_broker
    from msgbus.cli.main import freeze_imports

    freeze_imports()
    run_broker(
        host=host,
        port=port,
        data_dir=data_dir,
        broker_file=broker_file,
        config_file=config_file,
        name=name,
        metrics_port=metrics_port,
        presence=presence,
        verbose=verbose,
    )
