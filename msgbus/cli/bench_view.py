"""What ``msgbus bench sites`` prints: its report, per phase (kept apart from the
command so that the command's module stays about running the benches)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from msgbus.bench.sites import SitesReport

__all__ = ["show_sites_report"]


def show_sites_report(report: SitesReport, heartbeat: int) -> None:
    """The connections, each phase, the totals and the backlog of a run."""
    per_conn = report.rss_kib_per_connection
    memory = "unknown" if per_conn is None else f"{per_conn:.1f} KiB"
    click.echo(
        f"connections: {report.connected:,} of {report.sites:,} in "
        f"{report.connect_seconds:.1f} s; broker memory per idle connection {memory} "
        f"(heart-beats {heartbeat} s)"
    )
    for error in report.connect_errors[:5]:
        click.echo(f"  not connected: {error}")
    _phase_table(report)
    click.echo(
        f"sent {report.sent:,}, confirmed {report.confirmed:,}, stored {report.stored:,}, "
        f"confirmed but not stored {report.missing:,}; unconfirmed {report.unconfirmed:,}; "
        f"sites refused or cut off: {len(report.refused)}"
    )
    for refusal in report.refused[:5]:
        click.echo(f"  {refusal}")
    click.echo(
        f"backlog at the end of the {report.phases[-1].name} phase: {report.backlog:,} "
        f"confirmed, not stored; last row {report.drain_seconds:.1f} s after it"
    )


def _phase_table(report: SitesReport) -> None:
    peak = "unknown" if report.peak_rss_mib is None else f"{report.peak_rss_mib:,.0f} MiB"
    click.echo(f"broker memory at its peak: {peak}")
    if report.single is None:
        click.echo(f"one connection, persistent: {report.single_note}")
    else:
        click.echo(
            f"one connection, persistent, with a receipt each: {report.single.rate:,.0f} "
            f"msgs/s ({report.single.count:,} messages, same broker, before the sites)"
        )
    click.echo(
        f"{'phase':<8}{'offered/s':>11}{'written/s':>11}{'confirmed/s':>13}"
        f"{'p50/p99 confirm':>17}{'p50/p99 to row':>17}{'cores':>7}{'peak MiB':>10}"
    )
    for phase in report.phases:
        cores = "-" if phase.cpu is None else f"{phase.cpu:.2f}"
        rss = "-" if phase.peak_rss_mib is None else f"{phase.peak_rss_mib:,.0f}"
        confirm = "{:.2f}/{:.2f} s".format(*phase.confirm)
        to_row = "{:.2f}/{:.2f} s".format(*phase.latency)
        click.echo(
            f"{phase.name:<8}{phase.offered:>11,.0f}{phase.sent / phase.seconds:>11,.0f}"
            f"{phase.accepted / phase.seconds:>13,.0f}{confirm:>17}{to_row:>17}"
            f"{cores:>7}{rss:>10}"
        )
    ratio = report.burst_ratio()
    if ratio is not None:
        click.echo(f"confirmed in the burst / one connection's persistent rate: {ratio:.2f}")
