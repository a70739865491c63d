"""Entry point of the ``msgbus`` command.

Each command group lives in its own module and is registered here; ``--help`` lists
only what is registered, so a command appears once it works.
"""

from __future__ import annotations

import gc
import importlib
import sys

import click
from click.utils import make_default_short_help

from msgbus import __version__
from msgbus.cli import handbook
from msgbus.errors import MsgbusError

# command name -> ("module:attribute", its one-line help). Commands load on first use: a
# short-lived `msgbus probe` on thousands of nodes must not import SQLAlchemy, Alembic and
# the broker to publish one result, and `msgbus --help` lists them from the help written
# here without importing any (tests/unit/cli/test_main.py keeps it equal to each command's).
COMMANDS: dict[str, tuple[str, str]] = {
    "audit": (
        "msgbus.cli.audit_cmd:audit_cmd",
        "Report missing messages (per producer, as number ranges) and stale series.",
    ),
    "bench": (
        "msgbus.cli.bench_cmd:bench",
        "Measure msgbus throughput against a baseline (prints msgs/s and the ratio).",
    ),
    "broker": (
        "msgbus.cli.broker_cmd:broker",
        "The embedded STOMP broker (queues, topics, durable subscriptions).",
    ),
    "consume": (
        "msgbus.cli.consume_cmd:consume",
        "Store messages from a broker in the database, acknowledging after commit.",
    ),
    "ctl": (
        "msgbus.cli.status_cmd:ctl",
        "Send COMMAND (status, pause, resume, drain, reload, logs, stop) and print replies.",
    ),
    "dashboard": (
        "msgbus.cli.dashboard_cmd:dashboard",
        "Serve a web page with the latest result per site and metric, updated live.",
    ),
    "db": (
        "msgbus.cli.db_cmd:db",
        "The relational store the consumer writes to.",
    ),
    "demo": (
        "msgbus.cli.demo_cmd:demo",
        "Embedded broker + simulated site probes + consumer into SQLite, then a summary.",
    ),
    "gateway": (
        "msgbus.cli.gateway_cmd:gateway",
        "Serve the ARGO AMS v1 API (topics, publish, subscriptions, pull, acknowledge) in "
        "front of the brokers; users and tokens come from the gateway section.",
    ),
    "nagios-bridge": (
        "msgbus.cli.nagios_cmd:nagios_bridge",
        "Submit each probe result as a passive check result to Nagios' command file (or "
        "Icinga's compatible command pipe), or to Icinga 2's REST API with --icinga-url (or "
        "icinga.url in the configuration).",
    ),
    "network": (
        "msgbus.cli.network_cmd:network",
        "Broker networks (ActiveMQ) or clusters (RabbitMQ) described by a topology YAML file.",
    ),
    "probe": (
        "msgbus.cli.publish_cmd:probe",
        "Run a Nagios plugin (after --) and publish its result as a ProbeResult.",
    ),
    "registry": (
        "msgbus.cli.registry_cmd:registry",
        "Keep every component's last announcement in the store, until stopped.",
    ),
    "publish": (
        "msgbus.cli.publish_cmd:publish",
        "Publish every message in INPUTS (WLCG text or JSON files, - for stdin).",
    ),
    "schema": (
        "msgbus.cli.schema_cmd:schema",
        "Message schema: export JSON Schemas, validate message files.",
    ),
    "spool": (
        "msgbus.cli.publish_cmd:spool",
        "Inspect or drain the local spool of undelivered messages.",
    ),
    "status": (
        "msgbus.cli.status_cmd:status",
        "Show the live msgbus components (or one COMPONENT and where its state came from).",
    ),
    "watch": (
        "msgbus.cli.watch_cmd:watch",
        "Print the matching events as they arrive (the state changes of a job, say).",
    ),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported when invoked (click's documented pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's listing, from the registered help: no command module is imported."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(map(len, names))
        rows = []
        for name in names:
            if name in COMMANDS:
                rows.append((name, make_default_short_help(COMMANDS[name][1], limit)))
            elif not (command := self.commands[name]).hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module_name, attribute = target[0].split(":")
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


def freeze_imports() -> None:
    """For a command that imports its heavy modules when it runs (so that its --help
    does not): exempt them from the collector, as cli() did for the imports before it."""
    if _owns_process:
        gc.freeze()


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
