"""The component table of ``msgbus status``, rendered with rich from the presence table."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from rich.table import Table

from msgbus.presence.table import Entry

__all__ = ["render_components"]

_STATE_STYLES = {
    "running": "green",
    "paused": "yellow",
    "draining": "yellow",
    "stopping": "yellow",
    "stopped": "dim",
    "lost": "bold red",
}


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.1f}h ago"


def _counters(counters: Mapping[str, float]) -> str:
    return " ".join(f"{k}={v:g}" for k, v in sorted(counters.items()))


def render_components(rows: Iterable[tuple[Entry, str]], now: float) -> Table:
    table = Table(title="msgbus components")
    # Identity and state never wrap (scripts and eyes look for them); counters fold.
    for column in ("NAME", "KIND", "SITE", "HOST", "PID", "STATE", "LAST SEEN", "VIA"):
        table.add_column(column, no_wrap=True)
    table.add_column("COUNTERS", overflow="fold", min_width=12)
    for entry, state in rows:
        info = entry.info
        style = _STATE_STYLES.get(state, "")
        table.add_row(
            info.name,
            info.kind,
            info.site or "-",
            info.host,
            str(info.pid),
            f"[{style}]{state}[/]" if style else state,
            _age(max(now - entry.last_seen, 0.0)),
            entry.heard,
            _counters(info.counters),
        )
    return table
