"""``msgbus network``: render, run, inspect, verify and reconfigure a broker network."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from msgbus.cli.options import size_option
from msgbus.errors import NetworkError
from msgbus.network.advisories import advisories_for
from msgbus.network.local import LocalNetwork
from msgbus.network.plan import apply_plan, make_plan
from msgbus.network.rabbitmq import render_definitions, render_node_config
from msgbus.network.rabbitmq_local import RabbitCluster
from msgbus.network.render import render_broker
from msgbus.network.topology import load_topology
from msgbus.network.verify import DEFAULT_PROBE_TOPIC, VerifyResult, verify

__all__ = ["network"]

_topology_arg = click.argument(
    "topology", type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
_state_opt = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where brokers keep config, logs and data [default: .msgbus/network/NAME].",
)
_broker_opt = click.option(
    "--only",
    "brokers",
    multiple=True,
    metavar="NAME",
    help="Only this broker of the topology (repeatable).",
)


def _network(topology: Path, state_dir: Path | None) -> LocalNetwork | RabbitCluster:
    topo = load_topology(topology)
    if topo.engine == "rabbitmq":
        return RabbitCluster(topo, state_dir)
    return LocalNetwork(topo, state_dir)


@click.group()
def network() -> None:
    """Broker networks (ActiveMQ) or clusters (RabbitMQ) described by a topology YAML file."""


@network.command()
@_topology_arg
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory to write OUT/<broker>/activemq.xml into.",
)
def render(topology: Path, out: Path) -> None:
    """Write one activemq.xml per broker (rabbitmq: a rabbitmq.conf per node and one
    definitions.json)."""
    topo = load_topology(topology)
    files: dict[Path, str] = {}
    for broker in topo.brokers:
        if topo.engine == "rabbitmq":
            files[out / broker.name / "rabbitmq.conf"] = render_node_config(topo, broker.name)
        else:
            files[out / broker.name / "activemq.xml"] = render_broker(topo, broker.name)
    if topo.engine == "rabbitmq":
        files[out / "definitions.json"] = json.dumps(render_definitions(topo), indent=1)
    for target, text in files.items():
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise NetworkError(f"cannot write {target}: {exc.strerror}") from None
        click.echo(str(target))


@network.command()
@_topology_arg
@_state_opt
@_broker_opt
def up(topology: Path, state_dir: Path | None, brokers: tuple[str, ...]) -> None:
    """Start the brokers as local processes; wait until each answers STOMP and is bridged."""
    net = _network(topology, state_dir)
    names = list(brokers) or [b.name for b in net.topology.brokers]
    net.up(names)
    for name in names:
        click.echo(f"{name}: up at {net.url(name)}, data in {net.process(name).data_dir}")


@network.command()
@_topology_arg
@_state_opt
@_broker_opt
def down(topology: Path, state_dir: Path | None, brokers: tuple[str, ...]) -> None:
    """Stop the brokers (cleanly; killed after 30 s)."""
    net = _network(topology, state_dir)
    net.down(list(brokers) or None)
    click.echo("stopped: " + ", ".join(brokers or [b.name for b in net.topology.brokers]))


_NUMERIC = frozenset({"uptime", "connections", "destinations", "enqueued", "dequeued"})


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


@network.command()
@_topology_arg
@_state_opt
def status(topology: Path, state_dir: Path | None) -> None:
    """Per broker: up/down, uptime, connections, destinations, enqueued/dequeued, bridges."""
    net = _network(topology, state_dir)
    table = Table(title=f"network {net.topology.name}")
    for col in (
        "broker",
        "state",
        "uptime",
        "connections",
        "destinations",
        "enqueued",
        "dequeued",
        "bridged to",
    ):
        table.add_column(col, justify="right" if col in _NUMERIC else "left")
    down: list[str] = []
    statuses = net.status()
    for st in statuses:
        if not st.up:
            down.append(st.name)
        if st.stats is None:
            state = "down" if not st.up else f"up, no statistics: {st.error}" if st.error else "up"
            table.add_row(st.name, state, _duration(st.uptime_s), "-", "-", "-", "-", "-")
            continue
        s = st.stats
        table.add_row(
            st.name,
            "up",
            _duration(st.uptime_s),
            str(s.connections),
            str(s.destinations),
            str(s.enqueued),
            str(s.dequeued),
            ", ".join(sorted(s.bridges)) or "-",
        )
    Console(width=120).print(table)
    for st in statuses:
        for advisory in advisories_for(st.server):
            click.echo(
                f"warning: {st.name} reports {st.server}, affected by {advisory.cve} "
                f"({advisory.what}; see {advisory.source}); upgrade it, or check that your "
                "package carries the fix as a backport",
                err=True,
            )
    if isinstance(net, RabbitCluster) and not down:
        _cluster_check(net)
    if down:
        raise NetworkError(f"brokers down: {', '.join(down)}; start them with `msgbus network up`")


def _cluster_check(net: RabbitCluster) -> None:
    """Cluster members and quorum replicas; NetworkError naming what is missing."""
    problems = net.check()
    if problems:
        raise NetworkError("cluster check failed: " + "; ".join(problems))
    click.echo(
        f"cluster: all {len(net.topology.brokers)} members running; every consumer-group "
        "quorum queue has a replica on each"
    )


def print_matrix(result: VerifyResult) -> None:
    table = Table(title="delivery in ms (row: published on, column: received on)")
    table.add_column("from \\ to")
    for name in result.brokers:
        table.add_column(name, justify="right")
    for src in result.brokers:
        row = [src]
        for dst in result.brokers:
            pair = (src, dst)
            if pair in result.delivered:
                cell = f"{result.delivered[pair]:.0f}"
                row.append(cell if pair in result.expected else f"{cell} (unexpected)")
            else:
                row.append("FAIL" if pair in result.expected else "-")
        table.add_row(*row)
    Console(width=160).print(table)
    for name, why in sorted(result.down.items()):
        click.echo(f"{name}: unreachable: {why}")


@network.command(name="verify")
@_topology_arg
@_state_opt
@click.option(
    "--destination",
    default=DEFAULT_PROBE_TOPIC,
    show_default=True,
    help="Probe topic; only links that forward it are expected to deliver.",
)
@click.option("--timeout", default=15.0, show_default=True, help="Seconds to wait for probes.")
def verify_cmd(topology: Path, state_dir: Path | None, destination: str, timeout: float) -> None:
    """Send probes from every broker to durable subscribers on every other one.

    Exits 1 when a path the topology declares does not deliver (or one it does not
    declare does).
    """
    net = _network(topology, state_dir)
    if isinstance(net, RabbitCluster):
        _cluster_check(net)
    result = verify(net, destination=destination, timeout=timeout)
    print_matrix(result)
    if not result.ok:
        broken = ", ".join(f"{a}->{b}" for a, b in sorted(result.broken)) or "none"
        extra = ", ".join(f"{a}->{b}" for a, b in sorted(result.unexpected)) or "none"
        raise NetworkError(f"broken paths: {broken}; unexpected paths: {extra}")
    click.echo(f"all {len(result.expected)} expected paths deliver")


@network.command()
@_topology_arg
@_state_opt
@click.option("--dry-run", is_flag=True, help="Show the plan and change nothing.")
def apply(topology: Path, state_dir: Path | None, dry_run: bool) -> None:
    """Change the running network to TOPOLOGY broker by broker, losing no message."""
    from msgbus.network.rabbitmq_apply import apply_cluster, plan_cluster

    net = _network(topology, state_dir)
    if isinstance(net, RabbitCluster):
        cluster = net
        cluster_plan = plan_cluster(cluster)
        if _show_plan([s.describe() for s in cluster_plan.steps]) and not dry_run:
            apply_cluster(cluster_plan, cluster, echo=click.echo)
            click.echo("applied")
        return
    plan = make_plan(net.saved(), load_topology(topology))
    if _show_plan([s.describe() for s in plan.steps]) and not dry_run:
        apply_plan(plan, net, echo=click.echo)
        click.echo("applied")


def _show_plan(steps: list[str]) -> bool:
    """Print the numbered steps (or that there are none); True when there are some."""
    if not steps:
        click.echo("nothing to change")
        return False
    click.echo("plan:")
    for i, step in enumerate(steps, 1):
        click.echo(f"  {i}. {step}")
    return True


@network.command(name="bench")
@_topology_arg
@_state_opt
@click.option("--from", "source", help="Broker to publish on (engine activemq).")
@click.option("--to", "target", help="Broker to consume on (engine activemq).")
@click.option(
    "--count",
    type=click.IntRange(min=1),
    default=5000,
    show_default=True,
    help="Messages sent over the path and over the same-broker baseline (per engine on rabbitmq).",
)
@click.option(
    "--store",
    "store_url",
    default=None,
    metavar="URL",
    help="Engine rabbitmq: the store consumed into [default: a fresh SQLite file per engine].",
)
@click.option(
    "--window",
    type=click.IntRange(min=1),
    default=200,
    show_default=True,
    help="Engine rabbitmq: unconfirmed messages in flight at most (ActiveMQ: four transactions "
    "of a quarter of it).",
)
@click.option(
    "--rounds",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Engine rabbitmq: interleaved rounds; the median is shown.",
)
@size_option
def bench_cmd(
    topology: Path,
    state_dir: Path | None,
    source: str | None,
    target: str | None,
    count: int,
    store_url: str | None,
    window: int,
    rounds: int,
    size: int,
) -> None:
    """Persistent topic messages FROM -> TO across the network vs FROM -> FROM (baseline);
    rabbitmq: one node vs the cluster vs ActiveMQ, published confirmed and stored."""
    from msgbus.network.bench import measure_path

    net = _network(topology, state_dir)
    if isinstance(net, RabbitCluster):
        _bench_engines(net, count, size, window, rounds, store_url)
        return
    if source is None or target is None:
        raise NetworkError("engine activemq measures a path: give --from BROKER and --to BROKER")
    click.echo(
        f"{count} persistent messages of {size} bytes, durable subscriber, receipt every 200"
    )
    click.echo(f"{'path':<20}{'msgs/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    base = measure_path(net, source, source, count=count, size=size)
    path = measure_path(net, source, target, count=count, size=size)
    for run in (base, path):
        label = f"{run.source} -> {run.target}"
        click.echo(
            f"{label:<20}{run.rate:>10,.0f}{run.latency_ms_p50:>10.1f}{run.latency_ms_p99:>10.1f}"
        )
    click.echo(f"ratio (network / local): {path.rate / base.rate:.2f}x")


def _bench_engines(
    cluster: RabbitCluster, count: int, size: int, window: int, rounds: int, store_url: str | None
) -> None:
    from msgbus.bench.engines import compare_engines

    problems = cluster.check()
    if problems:
        raise NetworkError("the cluster is not whole: " + "; ".join(problems))
    click.echo(
        f"{count} persistent messages of {size} bytes per engine and round, at most {window} "
        f"unconfirmed, consumed by msgbus.Consumer into {store_url or 'a fresh SQLite store'}; "
        f"median of {rounds} interleaved rounds after a warm-up; load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    with tempfile.TemporaryDirectory(prefix="msgbus-bench-") as tmp:
        runs = compare_engines(
            cluster,
            Path(tmp),
            count=count,
            size=size,
            window=window,
            rounds=rounds,
            store_url=store_url,
        )
    table = Table(title="publish confirmed, consume into the store (ratios: to 1 RabbitMQ node)")
    for col in ("engine", "msgs/s", "confirm p50 ms", "confirm p99 ms", "rate", "p99"):
        table.add_column(col, justify="left" if col == "engine" else "right")
    base = runs[0]
    for run in runs:
        table.add_row(
            run.engine,
            f"{run.rate:,.0f}",
            f"{run.confirm_ms_p50:.1f}",
            f"{run.confirm_ms_p99:.1f}",
            f"{run.rate / base.rate:.2f}x",
            f"{run.confirm_ms_p99 / base.confirm_ms_p99:.2f}x",
        )
    Console(width=120).print(table)
