"""``msgbus status`` (who is there) and ``msgbus ctl`` (send a control command).

How ``status`` learns of components that announced before it started: it broadcasts
a ``status`` request on the everyone-topic, which every running component answers,
and listens to the presence topic meanwhile (``--listen`` seconds). What it heard is
kept in a small state file, so a component seen by an earlier run that no longer
answers shows as ``lost`` once ``control.lost_after`` has passed.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.live import Live

from msgbus.cli.broker_view import ask_broker, render_broker
from msgbus.cli.options import broker_option, config_option
from msgbus.cli.status_view import render_components
from msgbus.config import MsgbusConfig, load_config
from msgbus.errors import ControlError
from msgbus.presence.client import ControlClient, Gathered
from msgbus.presence.lookup import LookupResult, lookup
from msgbus.presence.messages import ControlReply, Target
from msgbus.presence.table import PresenceTable, default_state_file

__all__ = ["ctl", "status"]


def _config(
    config_file: Path | None, brokers: tuple[str, ...], store_url: str | None = None
) -> MsgbusConfig:
    overrides: dict[str, Any] = {
        "connection": {"brokers": list(brokers) or None},
        "store_url": store_url,
    }
    return load_config(config_file, overrides)


def console_for_output() -> Console:
    # Piped output is read by scripts: full rows rather than rich's 80-column default.
    return Console() if sys.stdout.isatty() else Console(width=200)


def central(config: MsgbusConfig, name: str) -> LookupResult:
    """What the registry kept of ``name``: its state, or ``lost`` (with the last state)
    when it has not been heard of for ``control.lost_after`` or said it stopped."""
    from msgbus.store.components import read_component
    from msgbus.store.database import Store

    store = Store(config.store_url)
    try:
        record = read_component(store, name)
    finally:
        store.close()
    if record is None:
        raise ControlError(
            f"the registry at {store.display_url} knows no component {name!r}; is `msgbus "
            "registry` running against it?"
        )
    age = time.time() - record.last_seen.timestamp()
    info = dict(record.info)
    if age > config.control.lost_after or info.get("event") == "stop":
        info["last_state"] = info.get("state")
        info["state"] = "stopped" if info.get("event") == "stop" else "lost"
    return LookupResult("central", age, info)


_timeout_option = click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    help="Seconds to wait for replies.",
)


def _take(table: PresenceTable, gathered: Gathered) -> None:
    for at, message in gathered.received:
        if isinstance(message, ControlReply):
            table.heard_reply(message, at)
        else:
            table.heard(message, at, "presence")


def _rows(table: PresenceTable) -> list[dict[str, Any]]:
    return [
        {**e.info.model_dump(), "state": s, "last_seen": e.last_seen, "via": e.heard}
        for e, s in table.rows(time.time())
    ]


@click.command()
@click.argument("component", required=False)
@config_option
@broker_option()
@_timeout_option
@click.option(
    "--listen",
    type=click.FloatRange(min=0.1),
    default=2.0,
    show_default=True,
    help="Seconds to gather answers and announcements for the table.",
)
@click.option(
    "--broker-stats/--no-broker-stats",
    default=True,
    show_default=True,
    help="Also show the broker's own statistics (ActiveMQ's statistics plugin).",
)
@click.option("--watch", is_flag=True, help="Keep listening and refresh the table live.")
@click.option(
    "--state-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where the table is kept between runs (default: XDG cache).",
)
@click.option(
    "--source",
    type=click.Choice(["auto", "component", "central"]),
    default="auto",
    show_default=True,
    help="For one COMPONENT: ask it (component), read what `msgbus registry` kept "
    "(central), or the freshest that answers (auto: component, then central).",
)
@click.option("--store", "store_url", metavar="URL", help="The central store (default: store_url).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def status(
    component: str | None,
    config_file: Path | None,
    brokers: tuple[str, ...],
    timeout: float,
    listen: float,
    broker_stats: bool,
    watch: bool,
    state_file: Path | None,
    source: str,
    store_url: str | None,
    as_json: bool,
) -> None:
    """Show the live msgbus components (or one COMPONENT and where its state came from).

    Components that started before this command answer its broadcast `status`
    request; announcements on the presence topic are gathered meanwhile. What was
    heard is kept in a state file, so a component seen before that no longer
    answers is shown `lost` after control.lost_after seconds.
    """
    config = _config(config_file, brokers, store_url)
    if component is not None and source == "central":
        _show_one(console_for_output(), central(config, component), as_json)
        return
    state_path = state_file or default_state_file()
    table = PresenceTable(config.control.lost_after)
    table.load(state_path, time.time())
    console = console_for_output()
    with ControlClient(config) as client:
        if component is not None:
            try:
                found = lookup(component, table, client, timeout=timeout)
            except ControlError:
                # It does not answer: its last word, where a central store is configured.
                if source == "component" or "store_url" not in config.model_fields_set:
                    raise
                found = central(config, component)
            _show_one(console, found, as_json)
            table.save(state_path)
            return
        with ThreadPoolExecutor(1) as pool:
            view = pool.submit(ask_broker, config.connection, timeout) if broker_stats else None
            client.listen_presence()
            client.send(Target(scope="all"), "status")
            _take(table, client.gather(listen))
            table.save(state_path)
            broker = view.result() if view is not None else None
        if as_json:
            out = {"components": _rows(table), "broker": broker.as_dict() if broker else None}
            click.echo(json.dumps(out, indent=2))
            return
        console.print(render_components(table.rows(time.time()), time.time()))
        if broker is not None:
            console.print(render_broker(broker))
        if watch:
            _watch(console, client, table, state_path)


def _show_one(console: Console, result: LookupResult, as_json: bool) -> None:
    if as_json:
        out = {"source": result.source, "age": result.age, "info": result.info}
        click.echo(json.dumps(out, indent=2, default=str))
        return
    name = result.info.get("name")
    console.print(f"[bold]{name}[/] (source: {result.source}, {result.age:.0f} s old)")
    for key, value in result.info.items():
        console.print(f"  {key}: {value}")


def _watch(console: Console, client: ControlClient, table: PresenceTable, path: Path) -> None:
    """Refresh the table as announcements arrive, until interrupted (Ctrl-C ends it)."""
    with Live(console=console, auto_refresh=False) as live, contextlib.suppress(KeyboardInterrupt):
        while True:
            _take(table, client.gather(1.0))
            table.save(path)
            live.update(render_components(table.rows(time.time()), time.time()), refresh=True)


def _parse_args(pairs: tuple[str, ...]) -> dict[str, Any]:
    args: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--arg")
        try:
            args[key] = json.loads(raw)
        except ValueError:
            args[key] = raw
    return args


def _show(reply: ControlReply) -> None:
    who = f"{reply.name} ({reply.kind})"
    result = reply.result
    if reply.command == "logs" and isinstance(result, dict):
        click.echo(f"{who}: last {len(result.get('lines', []))} log lines")
        for line in result.get("lines", []):
            click.echo(f"  {line}")
        return
    shown = "ok" if result is None else json.dumps(result, indent=2, default=str)
    click.echo(f"{who}: {shown}")


@click.command()
@click.argument("words", nargs=-1, required=True, metavar="[NAME] COMMAND")
@click.option("--kind", help="Send to every component of this kind (consumer, publisher...).")
@click.option("--site", help="Send to every component of this site.")
@click.option("--all", "everyone", is_flag=True, help="Send to every component.")
@click.option(
    "--arg",
    "arg_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Command argument (VALUE parsed as JSON when it is JSON).",
)
@click.option("--lines", type=click.IntRange(min=0), help="For `logs`: how many lines.")
@config_option
@broker_option()
@_timeout_option
@click.option("--json", "as_json", is_flag=True, help="Print the replies as JSON.")
def ctl(
    words: tuple[str, ...],
    kind: str | None,
    site: str | None,
    everyone: bool,
    arg_pairs: tuple[str, ...],
    lines: int | None,
    config_file: Path | None,
    brokers: tuple[str, ...],
    timeout: float,
    as_json: bool,
) -> None:
    """Send COMMAND (status, pause, resume, drain, reload, logs, stop) and print replies.

    `msgbus ctl NAME COMMAND` asks one component; with --kind, --site or --all give
    only COMMAND: every such component answers and all replies within --timeout are
    printed. Commands other than status need the user (control.user) in the
    components' control.allowed_users, and its control.secrets entry when it has one.
    """
    broadcasts = [
        t
        for t in (
            Target(scope="kind", value=kind) if kind else None,
            Target(scope="site", value=site) if site else None,
            Target(scope="all") if everyone else None,
        )
        if t is not None
    ]
    if len(broadcasts) > 1:
        raise click.UsageError("give at most one of --kind, --site, --all")
    if broadcasts and len(words) != 1:
        raise click.UsageError("with --kind/--site/--all give only COMMAND")
    if not broadcasts and len(words) != 2:
        raise click.UsageError("give NAME COMMAND (or --kind/--site/--all and COMMAND)")
    target = broadcasts[0] if broadcasts else Target(scope="name", value=words[0])
    command = words[-1]
    args = _parse_args(arg_pairs)
    if lines is not None:
        args["lines"] = lines
    config = _config(config_file, brokers)
    with ControlClient(config) as client:
        replies = client.request(target, command, args, timeout=timeout)
    if as_json:
        click.echo(json.dumps([r.model_dump() for r in replies], indent=2, default=str))
    else:
        for reply in replies:
            if reply.ok:  # refusals and failures are reported once, by the error below
                _show(reply)
    if not replies:
        raise ControlError(
            f"no reply to {command!r} from {target} within {timeout:g} s; check the name "
            "(`msgbus status`) and the broker, or raise --timeout"
        )
    failed = [r for r in replies if not r.ok]
    if failed:
        raise ControlError(
            f"{len(failed)} of {len(replies)} component(s) refused or failed {command!r}: "
            + "; ".join(f"{r.name}: {r.error}" for r in failed)
        )
