"""``msgbus registry``: central information (DIRAC-style) in the store.

Listens to the presence topic and asks every component for its status at start, and
keeps each one's last word in the store's ``components`` table, so ``msgbus status NAME
--source central`` can show a component's state, and its last known state once it is
gone (marked lost).
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

import click

from msgbus.cli.options import broker_option, config_option

__all__ = ["registry"]


@click.command()
@broker_option()
@config_option
@click.option("--store", "store_url", metavar="URL", help="Where to keep it (default: store_url).")
def registry(brokers: tuple[str, ...], config_file: Path | None, store_url: str | None) -> None:
    """Keep every component's last announcement in the store, until stopped."""
    # Imported here: `msgbus registry --help` does not load the store (SQLAlchemy).
    from msgbus.cli.main import freeze_imports
    from msgbus.config import load_config
    from msgbus.presence.client import ControlClient
    from msgbus.presence.messages import Announcement, ControlReply, Target
    from msgbus.store.components import record_component
    from msgbus.store.database import Store

    freeze_imports()
    config = load_config(
        config_file, {"connection": {"brokers": list(brokers) or None}, "store_url": store_url}
    )
    store = Store(config.store_url)
    store.check()
    stop = threading.Event()

    def finish(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, finish)
    kept = 0
    try:
        with ControlClient(config) as client:
            client.listen_presence()
            client.send(Target(scope="all"), "status")  # those that started before us
            click.echo(f"registry: keeping components in {store.display_url}", err=True)
            while not stop.is_set():
                for at, message in client.gather(1.0).received:
                    if isinstance(message, Announcement):
                        record_component(store, message.model_dump(), at)
                    elif isinstance(message, ControlReply) and isinstance(message.result, dict):
                        record_component(store, {**message.result, "event": "alive"}, at)
                    else:
                        continue
                    kept += 1
    finally:
        store.close()
    click.echo(f"registry: stopped after {kept} updates", err=True)
