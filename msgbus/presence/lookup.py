"""Where a component's state is read from (DIRAC's local and remote sources).

In order: from the component itself when it runs in this process; else from its
last presence announcement when that is fresher than ``control.lost_after``; else by
asking it over the control channel. The result says which source answered.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from msgbus.errors import ControlError
from msgbus.presence.agent import local_agent
from msgbus.presence.client import ControlClient
from msgbus.presence.messages import Target
from msgbus.presence.table import Heard, PresenceTable

__all__ = ["LookupResult", "lookup"]


@dataclass(frozen=True)
class LookupResult:
    source: Heard
    age: float
    """Seconds between when the information was produced and now."""
    info: dict[str, Any]


def lookup(
    name: str, table: PresenceTable, client: ControlClient | None, *, timeout: float
) -> LookupResult:
    """Find ``name``'s state; ``client`` (connected) is used only when needed.

    ``table`` holds what was heard on the presence topic; a control answer is added
    to it. Raises ControlError when no source knows the component.
    """
    agent = local_agent(name)
    if agent is not None:
        return LookupResult("local", 0.0, agent.status_info())
    now = time.time()
    entry = table.entries.get(name)
    if (
        entry is not None
        and entry.heard == "presence"
        and entry.state(now, table.lost_after) != "lost"
    ):
        return LookupResult("presence", now - entry.last_seen, entry.info.model_dump())
    if client is not None:
        for reply in client.request(Target(scope="name", value=name), "status", timeout=timeout):
            if not reply.ok or not isinstance(reply.result, dict):
                raise ControlError(f"{name} refused the status request: {reply.error}")
            table.heard_reply(reply, time.time())
            return LookupResult("control", 0.0, reply.result)
    if entry is not None:
        raise ControlError(
            f"{name} did not answer within {timeout:g} s; last heard {now - entry.last_seen:.0f} s "
            f"ago ({entry.state(now, table.lost_after)}); check that it still runs"
        )
    raise ControlError(
        f"no component named {name!r} answered within {timeout:g} s; `msgbus status` lists "
        "the known ones"
    )
