"""``msgbus broker``: run the embedded STOMP broker."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

import click

from msgbus.broker import EmbeddedBroker, load_broker_config


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
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="YAML file with broker settings (users, tls, limits, ...); flags override it.",
)
@click.option("--name", default=None, help="Broker name, used in message ids and metrics.")
@click.option("--metrics-port", type=int, default=None, help="Serve Prometheus metrics here.")
@click.option("-v", "--verbose", is_flag=True, help="Log connections and errors.")
def serve(
    host: str | None,
    port: int | None,
    data_dir: Path | None,
    config_file: Path | None,
    name: str | None,
    metrics_port: int | None,
    verbose: bool,
) -> None:
    """Run the broker until interrupted (Ctrl-C or SIGTERM)."""
    config = load_broker_config(
        config_file, host=host, port=port, data_dir=data_dir, name=name, metrics_port=metrics_port
    )
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(_serve(EmbeddedBroker(config)))


async def _serve(server: EmbeddedBroker) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    where = server.config.data_dir or "memory only"
    click.echo(f"msgbus broker {server.config.name} listening on {server.url} (store: {where})")
    if server.metrics_port is not None:
        click.echo(f"metrics on http://{server.config.host}:{server.metrics_port}/metrics")
    try:
        await stop.wait()
    finally:
        await server.stop()
    click.echo("broker stopped")
