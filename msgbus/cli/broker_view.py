"""The broker's own statistics for ``msgbus status``, where the broker offers them.

ActiveMQ answers over STOMP through its statistics plugin (read by
msgbus.network.stats); the embedded broker and RabbitMQ offer nothing over STOMP
(their numbers are on their metrics/management endpoints), and the view says so.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from msgbus.config import ConnectionConfig
from msgbus.errors import NetworkError, TransportError
from msgbus.network.stats import BrokerStats, DestinationStats, broker_stats, destination_stats
from msgbus.transport.failover import connect_first

__all__ = ["BrokerView", "ask_broker", "render_broker"]


@dataclass
class BrokerView:
    url: str
    server: str
    stats: BrokerStats | None = None
    destinations: list[DestinationStats] = field(default_factory=list)
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        if self.stats is not None:
            out["stats"]["bridges"] = sorted(self.stats.bridges)
        return out


def ask_broker(settings: ConnectionConfig, timeout: float) -> BrokerView:
    """Ask the first reachable broker of ``settings`` about itself (own connection)."""
    conn = connect_first(settings.without_client_id())
    view = BrokerView(url=str(conn.url), server=conn.server or "unknown")
    try:
        if not conn.server.startswith("ActiveMQ/"):
            view.note = f"{view.server} offers no statistics over STOMP"
            return view
        view.stats = broker_stats(conn, timeout)
        view.destinations = destination_stats(conn, timeout)
    except (NetworkError, TransportError) as exc:
        view.note = f"no statistics: {exc}"
    finally:
        conn.disconnect()
    return view


def render_broker(view: BrokerView) -> Group | Text:
    title = f"broker {view.url} ({view.server})"
    if view.stats is None:
        return Text(f"{title}: {view.note}", style="dim")
    s = view.stats
    summary = Table(title=title)
    for column in ("CONNECTIONS", "DESTINATIONS", "ENQUEUED", "DEQUEUED", "CONSUMERS", "BRIDGES"):
        summary.add_column(column, justify="right")
    summary.add_row(
        str(s.connections),
        str(s.destinations),
        str(s.enqueued),
        str(s.dequeued),
        str(s.consumers),
        ", ".join(sorted(s.bridges)) or "-",
    )
    dests = Table(title="destinations (SIZE: messages waiting)")
    dests.add_column("NAME", no_wrap=True)
    for column in ("SIZE", "ENQUEUED", "DEQUEUED", "CONSUMERS"):
        dests.add_column(column, justify="right")
    for d in sorted(view.destinations, key=lambda d: (-d.size, d.name)):
        size = f"[bold yellow]{d.size}[/]" if d.size else "0"
        dests.add_row(d.name, size, str(d.enqueued), str(d.dequeued), str(d.consumers))
    return Group(summary, dests)
