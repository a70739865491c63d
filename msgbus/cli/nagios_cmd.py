"""``msgbus nagios-bridge``: probe results from the bus as Nagios passive check results,
through Nagios' command file or Icinga 2's REST API (``--icinga-url``); the run loop is
``msgbus.consume.bridge``, which survives broker restarts.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path

import click

from msgbus.cli.options import broker_option, config_option, parse_duration
from msgbus.config import load_config
from msgbus.consume.bridge import Bridge, to_command_file, to_icinga
from msgbus.consume.icinga import IcingaApi, IcingaSink
from msgbus.consume.nagios import DEFAULT_COMMAND_FILE, CommandFile, NameRule
from msgbus.consume.subscription import Subscription

__all__ = ["nagios_bridge"]


@click.command("nagios-bridge")
@broker_option()
@config_option
@click.option(
    "--destination", help="Where the probe results are published [default: the config's]."
)
@click.option("--subscription", metavar="NAME", help="Durable subscription name (a topic).")
@click.option(
    "--command-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_COMMAND_FILE,
    show_default=True,
    help="Nagios' external command file (command_file in nagios.cfg).",
)
@click.option("--host", "host", default="{hostName}", show_default=True,
              help="Nagios host name, a template over the result's fields.")  # fmt: skip
@click.option("--service", "service", default="{metricName}", show_default=True,
              help="Nagios service name, a template over the result's fields.")  # fmt: skip
@click.option("--icinga-url", metavar="URL",
              help="Icinga 2 REST API https://HOST:5665, not the command file.")  # fmt: skip
@click.option("--icinga-user", help="Icinga API user (an ApiUser allowed "
              "actions/process-check-result).")  # fmt: skip
@click.option("--icinga-password", help="The API user's password; better in the environment "
              "as MSGBUS_ICINGA__PASSWORD, out of sight of ps.")  # fmt: skip
@click.option("--icinga-ca", type=click.Path(dir_okay=False, path_type=Path),
              help="CA of Icinga's API certificate (/var/lib/icinga2/certs/ca.crt).")  # fmt: skip
@click.option("--icinga-cert", type=click.Path(dir_okay=False, path_type=Path),
              help="Client certificate for Icinga (an ApiUser with client_cn).")  # fmt: skip
@click.option("--icinga-key", type=click.Path(dir_okay=False, path_type=Path),
              help="Private key of --icinga-cert (when not in the same file).")  # fmt: skip
@click.option("--count", type=click.IntRange(min=1), help="Stop after this many check results.")
@click.option("--until", help="Stop after this long (90s, 30m, 2h, 7d).")
def nagios_bridge(
    brokers: tuple[str, ...],
    config_file: Path | None,
    destination: str | None,
    subscription: str | None,
    command_file: Path,
    host: str,
    service: str,
    icinga_url: str | None,
    icinga_user: str | None,
    icinga_password: str | None,
    icinga_ca: Path | None,
    icinga_cert: Path | None,
    icinga_key: Path | None,
    count: int | None,
    until: str | None,
) -> None:
    """Submit each probe result as a passive check result to Nagios' command file (or
    Icinga's compatible command pipe), or to Icinga 2's REST API with --icinga-url
    (or icinga.url in the configuration)."""
    icinga = {"url": icinga_url, "user": icinga_user, "password": icinga_password,
              "ca": icinga_ca, "cert": icinga_cert, "key": icinga_key}  # fmt: skip
    config = load_config(
        config_file, {"connection": {"brokers": list(brokers) or None}, "icinga": icinga}
    )
    rule = NameRule(host, service)
    source = Subscription(destination or config.publisher.destination, subscription)
    stop_at = None if (limit := parse_duration(until)) is None else time.monotonic() + limit
    # The link reports broker outages, the Icinga retries theirs: one line per change.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    with contextlib.ExitStack() as stack:
        if config.icinga.url is not None:
            sink = IcingaSink(IcingaApi(config.icinga), rule, config.connection, until=stop_at)
            stack.callback(sink.close)
            submit, target = to_icinga(sink), config.icinga.url
        else:
            commands = stack.enter_context(CommandFile(command_file))
            submit, target = to_command_file(commands, rule), str(command_file)
        bridge = Bridge(
            config.connection, source, submit, target=target, count=count, stop_at=stop_at
        )
        submitted = bridge.run()
    click.echo(f"submitted {submitted} check result(s)", err=True)
