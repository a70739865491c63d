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
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ValidationError

from msgbus.presence.messages import Announcement, ControlReply

__all__ = ["Entry", "PresenceTable", "default_state_file"]

Heard = Literal["local", "presence", "control", "central"]
_FORGET_AFTER = 24 * 3600.0


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
