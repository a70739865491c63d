"""Entry point of the ``msgbus`` command.

Each command group lives in its own module and is registered here; ``--help`` lists
only what is registered, so a command appears once it works.
"""

from __future__ import annotations

import gc
import importlib
import sys

import click

from msgbus import __version__
from msgbus.cli import handbook
from msgbus.errors import MsgbusError

# command name -> "module:attribute". Commands load on first use: a short-lived
# `msgbus probe` on thousands of nodes must not import SQLAlchemy, Alembic and the
# broker to publish one result.
COMMANDS = {
    "audit": "msgbus.cli.audit_cmd:audit_cmd",
    "bench": "msgbus.cli.bench_cmd:bench",
    "broker": "msgbus.cli.broker_cmd:broker",
    "consume": "msgbus.cli.consume_cmd:consume",
    "ctl": "msgbus.cli.status_cmd:ctl",
    "dashboard": "msgbus.cli.dashboard_cmd:dashboard",
    "db": "msgbus.cli.db_cmd:db",
    "demo": "msgbus.cli.demo_cmd:demo",
    "gateway": "msgbus.cli.gateway_cmd:gateway",
    "nagios-bridge": "msgbus.cli.nagios_cmd:nagios_bridge",
    "network": "msgbus.cli.network_cmd:network",
    "probe": "msgbus.cli.publish_cmd:probe",
    "registry": "msgbus.cli.registry_cmd:registry",
    "publish": "msgbus.cli.publish_cmd:publish",
    "schema": "msgbus.cli.schema_cmd:schema",
    "spool": "msgbus.cli.publish_cmd:spool",
    "status": "msgbus.cli.status_cmd:status",
    "watch": "msgbus.cli.watch_cmd:watch",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported when invoked (click's documented pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module_name, attribute = target.split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return handbook.with_epilog(cmd_name, command)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=handbook.ROOT_EPILOG,
)
@click.version_option(__version__, prog_name="msgbus", message=handbook.VERSION_MESSAGE)
def cli() -> None:
    """msgbus: grid-probe messaging over STOMP brokers."""
    if _owns_process:
        # Runs after the command's module is imported. The consumer and publisher
        # allocate a few dozen short-lived objects per message; with the default
        # thresholds the collector ran ~900 times per 40k messages and re-scanned every
        # imported module (SQLAlchemy, pydantic): 5-8 us per message, measured. Frozen
        # imports and a larger young generation cut that to ~1 us. Only when main()
        # owns the process: an application embedding the CLI keeps its own GC policy.
        gc.freeze()
        gc.set_threshold(20_000, 20, 20)


_owns_process = False  # set by main(), the console script


def main() -> None:
    """Run the CLI; a MsgbusError becomes one clear line and exit status 1, never a traceback."""
    global _owns_process
    _owns_process = True
    try:
        code = cli.main(standalone_mode=False)
        # Without standalone mode click returns a command's exit code instead of exiting.
        if isinstance(code, int):
            sys.exit(code)
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
