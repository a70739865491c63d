"""``msgbus demo``: run the whole pipeline on the embedded defaults and show the result."""

from __future__ import annotations

from pathlib import Path

import click

_COLOURS = {"OK": "green", "WARNING": "yellow", "CRITICAL": "red", "UNKNOWN": "magenta"}


@click.command()
@click.option("--duration", default=5.0, show_default=True, help="Seconds the probes publish.")
@click.option("--port", default=61613, show_default=True, help="Broker port (a free one if taken).")
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("msgbus-demo.db"),
    show_default=True,
    help="SQLite file the consumer writes.",
)
@click.option("--seed", type=int, default=None, help="Seed for the simulated statuses.")
def demo(duration: float, port: int, db_path: Path, seed: int | None) -> None:
    """Embedded broker + simulated site probes + consumer into SQLite, then a summary."""
    # Imported here: `msgbus demo --help` loads neither the pipeline nor rich.
    from rich.console import Console
    from rich.table import Table

    from msgbus.demo import run_demo
    from msgbus.schema import MetricStatus

    console = Console()
    report = run_demo(
        duration=duration,
        port=port,
        db_path=db_path,
        seed=seed,
        on_progress=lambda text: console.print(f"[dim]{text}[/dim]"),
    )
    statuses = [s.value for s in MetricStatus]
    table = Table(title="Stored probe results by site and status")
    table.add_column("site")
    for status in statuses:
        table.add_column(status, justify="right", style=_COLOURS.get(status, ""))
    for site in sorted(report.by_site):
        row = report.by_site[site]
        table.add_row(site, *(str(row.get(status, 0)) for status in statuses))
    console.print(table)
    first = (
        f"{report.first_row_after:.2f} s after start"
        if report.first_row_after is not None
        else "never"
    )
    console.print(
        f"published {report.published}, stored {report.stored} "
        f"(first row {first}); latest state of {len(report.latest)} site/metric pairs"
    )
    console.print(
        f"data: {db_path.resolve()} (tables probe_results, dead_letters), e.g.\n"
        f"  sqlite3 {db_path} 'select site, metric, status, timestamp from probe_results "
        "order by id desc limit 10'"
    )
