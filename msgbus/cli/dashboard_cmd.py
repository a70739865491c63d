"""``msgbus dashboard``: the live status page of the latest probe results."""

from __future__ import annotations

import contextlib
import signal
import threading
from pathlib import Path
from typing import Any

import click

from msgbus.cli.options import broker_option, config_option, metrics_port_option

__all__ = ["dashboard"]


@click.command()
@click.option("--store", "store_url", metavar="URL", help="Store to read (default: store_url).")
@broker_option("Take live updates from this broker's probe topic (else poll the store).")
@click.option("--destination", help="Probe topic for live updates (default: consumer.destination).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="HTTP port of the page and its API (0: any free port).",
)
@click.option(
    "--poll",
    type=click.FloatRange(min=0.2),
    default=2.0,
    show_default=True,
    help="Seconds between store reads when there is no --broker.",
)
@click.option("--name", help="With --broker: its name in msgbus status/ctl [dashboard@host:pid].")
@metrics_port_option
@config_option
def dashboard(
    store_url: str | None,
    brokers: tuple[str, ...],
    destination: str | None,
    host: str,
    port: int,
    poll: float,
    name: str | None,
    metrics_port: int | None,
    config_file: Path | None,
) -> None:
    """Serve a web page with the latest result per site and metric, updated live."""
    # Imported here: `msgbus dashboard --help` loads neither the store nor the server.
    from msgbus.cli.main import freeze_imports
    from msgbus.config import load_config
    from msgbus.consume.messages import signature_verifier
    from msgbus.dashboard.live import BrokerFeed, Hub
    from msgbus.dashboard.server import Dashboard
    from msgbus.presence.agent import ComponentAgent, no_args
    from msgbus.store.database import Store

    freeze_imports()
    overrides: dict[str, Any] = {
        "name": name,
        "store_url": store_url,
        "connection": {"brokers": list(brokers) or None},
        "metrics": {"port": metrics_port},
    }
    config = load_config(config_file, overrides)
    store = Store(config.store_url)
    store.check()
    feed = None
    if brokers:
        consumer = config.consumer
        verify = None
        if consumer.allowed_signers:  # show live only what the consumer would store
            verify = signature_verifier(consumer.allowed_signers, consumer.signer_ca)
        feed = BrokerFeed(
            config.connection, destination or consumer.destination, Hub(), verify=verify
        )
    server = Dashboard(store, host=host, port=port, feed=feed, poll_interval=poll)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with contextlib.ExitStack() as running:
        if config.metrics.port is not None:
            metrics_at = server.metrics.registry.serve(config.metrics.port)
            running.callback(server.metrics.registry.stop)
            click.echo(f"metrics on http://127.0.0.1:{metrics_at}/metrics", err=True)
        if feed is not None:  # on a backbone: announce it, answer status/logs/reload/stop
            running.enter_context(
                ComponentAgent(
                    config,
                    kind="dashboard",
                    stats=lambda: {"event_streams": server.hub.clients},
                    handlers={"stop": no_args(stop.set)},
                    reload=lambda: load_config(config_file, overrides),
                )
            )
        running.callback(store.close)  # callbacks run last-in first-out: server stops first
        server.start()
        running.callback(server.stop)
        live = f"topic {feed.destination}" if feed else f"store polled every {poll:g} s"
        click.echo(f"msgbus dashboard on {server.url} (store {store.display_url}; live: {live})")
        stop.wait()
