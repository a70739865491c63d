"""Entry point of the ``msgbus`` command.

Each command group lives in its own module and is registered here; ``--help`` lists
only what is registered, so a command appears once it works.
"""

from __future__ import annotations

import sys

import click

from msgbus import __version__
from msgbus.cli.bench_cmd import bench
from msgbus.cli.broker_cmd import broker
from msgbus.cli.consume_cmd import consume
from msgbus.cli.dashboard_cmd import dashboard
from msgbus.cli.db_cmd import db
from msgbus.cli.publish_cmd import probe, publish, spool
from msgbus.cli.schema_cmd import schema
from msgbus.cli.status_cmd import ctl, status
from msgbus.errors import MsgbusError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="msgbus")
def cli() -> None:
    """msgbus: grid-probe messaging over STOMP brokers."""


cli.add_command(bench)
cli.add_command(consume)
cli.add_command(db)
cli.add_command(publish)
cli.add_command(spool)
cli.add_command(probe)
cli.add_command(broker)
cli.add_command(schema)
cli.add_command(status)
cli.add_command(ctl)
cli.add_command(dashboard)


def main() -> None:
    """Run the CLI; a MsgbusError becomes one clear line and exit status 1, never a traceback."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except MsgbusError as exc:
        click.echo(f"msgbus: error: {exc}", err=True)
        sys.exit(1)
