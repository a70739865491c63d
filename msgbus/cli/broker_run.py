"""The embedded broker's process: start, presence and control, stop on a signal.

Kept apart from ``broker_cmd`` (the command's options) so that ``msgbus broker --help``
imports neither the broker nor asyncio.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import signal
from collections.abc import Callable
from pathlib import Path

import click
from pydantic import SecretStr

from msgbus.broker import EmbeddedBroker, load_broker_config
from msgbus.broker.config import BrokerConfig, BrokerTLS, BrokerUser
from msgbus.config import MsgbusConfig, load_config
from msgbus.presence.agent import ComponentAgent, no_args
from msgbus.presence.messages import default_name
from msgbus.transport.settings import TLSConfig
from msgbus.transport.url import BrokerURL

__all__ = ["run_broker"]


def run_broker(
    *,
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
    config = load_broker_config(
        broker_file, host=host, port=port, data_dir=data_dir, name=name, metrics_port=metrics_port
    )
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Read before starting, so a bad msgbus.yaml is reported before anything listens.
    client_config = load_config(config_file, {"name": name}) if presence else None
    if client_config is not None:
        config, client_config = _own_login(config, client_config)
    asyncio.run(_serve(EmbeddedBroker(config), client_config))


async def _serve(server: EmbeddedBroker, client_config: MsgbusConfig | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    where = server.config.data_dir or "memory only"
    click.echo(f"msgbus broker {server.config.name} listening on {server.url} (store: {where})")
    if server.metrics_port is not None:
        click.echo(f"metrics on http://{server.config.host}:{server.metrics_port}/metrics")
    agent = None
    if client_config is not None:
        agent = _presence_agent(server, client_config, lambda: loop.call_soon_threadsafe(stop.set))
        agent.start()
    try:
        await stop.wait()
    finally:
        if agent is not None:
            # Off the loop thread: the agent's goodbye travels through this very broker.
            await loop.run_in_executor(None, agent.stop)
        await server.stop()
    click.echo("broker stopped")


def _presence_agent(
    server: EmbeddedBroker, client_config: MsgbusConfig, stop: Callable[[], object]
) -> ComponentAgent:
    """Presence and control for the broker, connected to the broker itself."""
    # The presence name is kind@host:pid unless --name or msgbus.yaml gives one; the broker's
    # own name (in message ids) defaults to "msgbus", which says nothing in `msgbus status`.
    name = client_config.name or default_name("broker")
    connection = client_config.connection
    update: dict[str, object] = {"brokers": [BrokerURL.model_validate(server.url)]}
    if server.config.tls is not None and "tls" not in connection.model_fields_set:
        update["tls"] = _own_tls(server.config.tls)
    config = client_config.model_copy(
        update={"name": name, "connection": connection.model_copy(update=update)}
    )
    router, gate = server.router, server.gate
    return ComponentAgent(
        config,
        kind="broker",
        name=name,
        # Read from the agent's thread: plain counters and a snapshot of the queues.
        stats=lambda: {
            "connections": gate.connections,
            "messages_in": router.received,
            "messages_out": router.delivered,
            "queue_depth": sum(router.depths().values()),
        },
        handlers={"stop": no_args(stop)},
    )


def _own_login(broker: BrokerConfig, client: MsgbusConfig) -> tuple[BrokerConfig, MsgbusConfig]:
    """A broker with users refuses an agent without a login: unless msgbus.yaml gives one,
    the agent logs in as a user of its own, with a password only this process knows."""
    if not broker.users or client.connection.login is not None:
        return broker, client
    login = f"msgbus-agent-{secrets.token_hex(4)}"
    password = SecretStr(secrets.token_urlsafe(24))
    users = {**broker.users, login: BrokerUser(password=password)}
    connection = client.connection.model_copy(update={"login": login, "passcode": password})
    return (
        broker.model_copy(update={"users": users}),
        client.model_copy(update={"connection": connection}),
    )


def _own_tls(tls: BrokerTLS) -> TLSConfig:
    """How the broker's agent reaches the broker's own TLS listener when msgbus.yaml says
    nothing of TLS: it shows the broker's certificate (a broker with ``client_ca`` wants
    one, and a grid host certificate serves both ends) and trusts exactly that certificate,
    by whatever address the broker listens on (0.0.0.0 is in no certificate)."""
    return TLSConfig(
        cert=tls.cert,
        key=tls.key,
        key_password=tls.key_password,
        ca_file=tls.cert,
        check_hostname=False,
    )
