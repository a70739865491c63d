"""``msgbus gateway``: the ARGO AMS-compatible REST gateway (msgbus.gateway)."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any

import click

from msgbus.cli.options import broker_option, config_option
from msgbus.config import load_config
from msgbus.errors import ConfigError

__all__ = ["gateway"]


@click.command()
@broker_option()
@config_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8443, show_default=True, help="HTTPS port."
)
@click.option(
    "--cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The gateway's TLS certificate (PEM); AMS clients speak only HTTPS.",
)
@click.option(
    "--key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Its private key (PEM).",
)
@click.option(
    "--authn-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Also serve X.509 logins (certificate DN -> token, as ARGO's authn) on this port.",
)
@click.option(
    "--ca",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="CA file the client certificates of X.509 logins must chain to.",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where topics and subscriptions are kept (default: gateway.state_dir).",
)
def gateway(
    brokers: tuple[str, ...],
    config_file: Path | None,
    host: str,
    port: int,
    cert: Path,
    key: Path,
    authn_port: int | None,
    ca: Path | None,
    state_dir: Path | None,
) -> None:
    """Serve the ARGO AMS v1 API (topics, publish, subscriptions, pull, acknowledge)
    in front of the brokers; users and tokens come from the gateway section."""
    if importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("uvicorn") is None:
        raise ConfigError(
            "msgbus gateway needs its web stack; install it with: pip install 'msgbus[gateway]'"
        )
    if authn_port is not None and ca is None:
        raise ConfigError("--authn-port needs --ca: the CA that signs the client certificates")
    import uvicorn

    from msgbus.gateway.app import make_app
    from msgbus.gateway.authn import AuthnServer
    from msgbus.gateway.service import Gateway

    overrides: dict[str, Any] = {
        "connection": {"brokers": list(brokers) or None},
        "gateway": {"state_dir": state_dir},
    }
    config = load_config(config_file, overrides)
    if not config.gateway.users:
        raise ConfigError("no gateway users: add gateway.users (name: {token: ..., dn: ...})")
    # One line per change of each broker link (lost, connected again), as consume logs.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    service = Gateway(config)
    authn = None
    if authn_port is not None and ca is not None:
        authn = AuthnServer(config.gateway, host, authn_port, cert, key, ca).start()
        click.echo(f"X.509 logins on https://{host}:{authn.port}", err=True)
    try:
        uvicorn.run(
            make_app(service),
            host=host,
            port=port,
            ssl_certfile=str(cert),
            ssl_keyfile=str(key),
            log_level="warning",
            # SIGTERM: requests in flight get 5 s; idle keep-alive clients do not hold it.
            timeout_graceful_shutdown=5,
        )
    finally:
        if authn is not None:
            authn.stop()
        service.close()
