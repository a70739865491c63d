"""The status table: the last word heard from each component, and who went quiet.

A component is ``lost`` when nothing was heard from it for ``lost_after`` seconds
(no announcement, no reply) and its last word was not a clean stop. The table can be
kept in a small JSON file between ``msgbus status`` runs, so a component that was
seen once and then died shows as lost instead of silently vanishing.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ValidationError
from rich.table import Table

from msgbus.presence.messages import Announcement, ControlReply

__all__ = ["Entry", "PresenceTable", "default_state_file", "render_components"]

Heard = Literal["local", "presence", "control", "central"]
_FORGET_AFTER = 24 * 3600.0
_STATE_STYLES = {
    "running": "green",
    "paused": "yellow",
    "draining": "yellow",
    "stopping": "yellow",
    "stopped": "dim",
    "lost": "bold red",
}


def default_state_file() -> Path:
    """Per-user cache of the status table (XDG cache home)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "msgbus" / "presence.json"


class Entry(BaseModel):
    """What was last heard from one component, when and how."""

    info: Announcement
    last_seen: float
    heard: Heard

    def state(self, now: float, lost_after: float) -> str:
        if self.info.event == "stop":
            return "stopped"
        return "lost" if now - self.last_seen > lost_after else self.info.state


class PresenceTable:
    """Components by name; newer news replaces older."""

    def __init__(self, lost_after: float) -> None:
        self.lost_after = lost_after
        self.entries: dict[str, Entry] = {}

    def heard(self, info: Announcement, seen_at: float, how: Heard) -> None:
        current = self.entries.get(info.name)
        if current is None or seen_at >= current.last_seen:
            self.entries[info.name] = Entry(info=info, last_seen=seen_at, heard=how)

    def heard_reply(self, reply: ControlReply, seen_at: float) -> None:
        """Take a successful ``status`` reply as news of that component."""
        if reply.ok and reply.command == "status" and isinstance(reply.result, Mapping):
            info = Announcement.model_validate({**reply.result, "event": "alive"})
            self.heard(info, seen_at, "control")

    def rows(self, now: float) -> list[tuple[Entry, str]]:
        """Entries with their current state, sorted by kind then name."""
        ordered = sorted(self.entries.values(), key=lambda e: (e.info.kind, e.info.name))
        return [(e, e.state(now, self.lost_after)) for e in ordered]

    # -- persistence --------------------------------------------------------------

    def load(self, path: Path, now: float) -> None:
        """Merge a saved table; unreadable files are ignored (it is only a cache)."""
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            entries = [Entry.model_validate(item) for item in saved]
        except (OSError, ValueError, TypeError, ValidationError):
            return
        for entry in entries:
            if now - entry.last_seen < _FORGET_AFTER:
                self.heard(entry.info, entry.last_seen, entry.heard)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps([e.model_dump(mode="json") for e in self.entries.values()])
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".presence-")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(data)
        os.replace(tmp, path)


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
