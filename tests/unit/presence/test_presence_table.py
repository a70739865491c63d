"""The status table: newest news wins, lost and stopped states, the state file."""

from __future__ import annotations

import json
from pathlib import Path

from msgbus.cli.status_view import render_components
from msgbus.presence.messages import Announcement, ControlReply
from msgbus.presence.table import PresenceTable


def _info(name: str = "c1", event: str = "alive", state: str = "running") -> Announcement:
    return Announcement.model_validate(
        {
            "event": event,
            "name": name,
            "kind": "consumer",
            "site": "S1",
            "host": "h",
            "pid": 1,
            "version": "0.1.0",
            "state": state,
            "started_at": 0.0,
            "sent_at": 0.0,
            "interval": 10.0,
            "control": "/queue/q",
            "counters": {"stored_total": 5.0},
        }
    )


def test_component_becomes_lost_after_the_timeout() -> None:
    table = PresenceTable(lost_after=30)
    table.heard(_info(), 100.0, "presence")
    assert [s for _, s in table.rows(129.0)] == ["running"]
    assert [s for _, s in table.rows(131.0)] == ["lost"]


def test_clean_stop_is_stopped_not_lost() -> None:
    table = PresenceTable(lost_after=30)
    table.heard(_info(event="stop", state="stopped"), 100.0, "presence")
    assert [s for _, s in table.rows(1000.0)] == ["stopped"]


def test_newer_news_replaces_older_and_not_the_reverse() -> None:
    table = PresenceTable(lost_after=30)
    table.heard(_info(state="paused"), 200.0, "presence")
    table.heard(_info(state="running"), 100.0, "presence")
    assert table.entries["c1"].info.state == "paused"
    table.heard(_info(state="running"), 300.0, "presence")
    assert table.entries["c1"].info.state == "running"


def test_status_reply_counts_as_news() -> None:
    table = PresenceTable(lost_after=30)
    result = {**_info(state="paused").model_dump(), "stats": {"x": 1}, "commands": ["status"]}
    reply = ControlReply(
        request_id="r", name="c1", kind="consumer", command="status", ok=True, result=result
    )
    table.heard_reply(reply, 50.0)
    entry = table.entries["c1"]
    assert (entry.info.state, entry.heard, entry.last_seen) == ("paused", "control", 50.0)
    refused = reply.model_copy(update={"ok": False, "result": None, "error": "no"})
    table.heard_reply(refused, 60.0)
    assert table.entries["c1"].last_seen == 50.0


def test_state_file_round_trip_and_forgets_day_old_entries(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "presence.json"
    table = PresenceTable(lost_after=30)
    table.heard(_info("old"), 0.0, "presence")
    table.heard(_info("new"), 90_000.0, "control")
    table.save(path)
    loaded = PresenceTable(lost_after=30)
    loaded.load(path, now=90_010.0)
    assert list(loaded.entries) == ["new"]
    assert loaded.entries["new"].heard == "control"


def test_unreadable_state_file_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "presence.json"
    table = PresenceTable(lost_after=30)
    table.load(path, now=0.0)
    path.write_text("{not json")
    table.load(path, now=0.0)
    path.write_text(json.dumps([{"info": {"name": 1}}]))
    table.load(path, now=0.0)
    assert table.entries == {}


def test_render_shows_state_and_counters() -> None:
    from rich.console import Console

    table = PresenceTable(lost_after=30)
    table.heard(_info("c1"), 100.0, "presence")
    table.heard(_info("c2"), 0.0, "presence")
    console = Console(width=200, record=True)
    console.print(render_components(table.rows(100.0), 100.0))
    text = console.export_text()
    c1 = next(line for line in text.splitlines() if "c1" in line)
    c2 = next(line for line in text.splitlines() if "c2" in line)
    assert "running" in c1 and "stored_total=5" in c1 and "0s ago" in c1
    assert "lost" in c2 and "100s ago" in c2
