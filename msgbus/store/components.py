"""Central information: what each component last said about itself, in the store.

``msgbus registry`` writes every announcement and status answer it hears here (one row
per component, the newest wins); ``msgbus status NAME --source central`` reads it, so a
component's last known state outlives the component, marked lost when it is old.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from msgbus.store.database import Store
from msgbus.store.tables import TEXT_LENGTH, components

__all__ = ["ComponentRecord", "read_component", "record_component"]


@dataclass(frozen=True, slots=True)
class ComponentRecord:
    info: dict[str, Any]
    last_seen: datetime


def record_component(store: Store, info: Mapping[str, Any], seen_at: float) -> None:
    """Keep ``info`` (an announcement's fields) unless a newer one is there already."""
    seen = datetime.fromtimestamp(seen_at, timezone.utc)
    row = {
        "name": str(info["name"])[:TEXT_LENGTH],
        "kind": str(info.get("kind", "?"))[:64],
        "site": None if info.get("site") is None else str(info["site"])[:TEXT_LENGTH],
        "host": str(info.get("host", "?"))[:TEXT_LENGTH],
        "state": str(info.get("state", "?"))[:64],
        "event": str(info.get("event", "alive"))[:16],
        "info": json.dumps(dict(info), default=str),
        "last_seen": seen,
    }
    c = components
    with store.errors("recording a component"), store.engine.begin() as conn:
        updated = conn.execute(
            c.update().where(c.c.name == row["name"], c.c.last_seen <= seen).values(row)
        ).rowcount
        if (
            not updated
            and conn.execute(sa.select(c.c.name).where(c.c.name == row["name"])).first() is None
        ):
            conn.execute(c.insert().values(row))


def read_component(store: Store, name: str) -> ComponentRecord | None:
    c = components
    with store.errors("reading a component"), store.engine.connect() as conn:
        row = conn.execute(sa.select(c.c.info, c.c.last_seen).where(c.c.name == name)).first()
    if row is None:
        return None
    return ComponentRecord(json.loads(row.info), row.last_seen)
