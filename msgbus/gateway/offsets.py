"""AMS replay routes of ``msgbus gateway``: a subscription's ``:offsets`` (min, max,
current), ``:modifyOffset`` and ``:timeToOffset``, over the retention log
(:mod:`msgbus.gateway.replay`). Without ``gateway.retention.enabled`` each answers a 501
saying how to turn it on, and is left out of the OpenAPI document.

As on AMS: ``min`` is the oldest offset kept, ``max`` the one the next message gets;
``:modifyOffset`` takes an offset from ``min`` to ``max`` (else a 400, "Offset out of
bounds") and the next pull starts there, forgetting what was handed out and not
acknowledged; ``:timeToOffset?time=`` answers the offset of the first message kept that
was published at that time or later (else a 409). Reading offsets takes what ``read``
takes (pulling), and so does moving them. With the broker away each answers from the log
as it is (a 503 only where the answer may lie at the broker: no offset for a time yet).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import FastAPI, Query
from pydantic import BaseModel, Field

from msgbus.gateway.amserror import AmsError
from msgbus.gateway.params import Name, User
from msgbus.gateway.replay import Replay
from msgbus.gateway.service import Gateway, not_served

__all__ = ["add_offset_routes"]

_SUB = "/v1/projects/{project:name}/subscriptions/{sub:name}"


class Offsets(BaseModel):
    max: int = Field(description="The offset the next message of the topic gets")
    min: int = Field(description="The oldest offset the retention log keeps")
    current: int = Field(description="The offset the subscription's next pull starts at")


class OffsetRequest(BaseModel):
    offset: int = Field(ge=0, description="From min to max (:offsets)")


class OffsetOut(BaseModel):
    offset: int


When = Annotated[
    str,
    Query(
        alias="time",
        description="UTC, as AMS takes it: 2026-12-06T12:00:00.000Z (a space for the T too, "
        "as argo-ams-library sends it)",
    ),
]


def add_offset_routes(app: FastAPI, gateway: Gateway) -> None:
    """Route the replay requests of ``app`` to ``gateway``'s retention log."""
    shown = gateway.replay is not None

    def replay_of(project: str, user: str, name: str, what: str) -> tuple[Replay, str]:
        if project != gateway.project:
            raise AmsError(404, "Project doesn't exist")
        if gateway.replay is None:
            raise not_served(
                f"subscription offsets ({what})",
                "nothing was changed; set gateway.retention.enabled to keep a retention log",
            )
        sub = gateway.subs.get(name)
        if sub is None:
            raise AmsError(404, "Subscription doesn't exist")
        gateway.authorize(user, "read", sub.topic, sub.name)
        return gateway.replay, sub.topic

    @app.get(f"{_SUB}:offsets", response_model=Offsets, include_in_schema=shown)
    def offsets(project: Name, sub: Name, who: User) -> dict[str, Any]:
        replay, topic = replay_of(project, who, sub, "getoffsets_sub")
        bounds = replay.bounds(topic)
        return {"max": bounds.max, "min": bounds.min, "current": replay.log.current(sub, topic)}

    @app.post(f"{_SUB}:modifyOffset", include_in_schema=shown)
    def modify_offset(project: Name, sub: Name, body: OffsetRequest, who: User) -> dict[str, Any]:
        replay, topic = replay_of(project, who, sub, "modifyoffset_sub")
        state = gateway.subs[sub]
        with state.lock:
            bounds = replay.bounds(topic)
            if not bounds.min <= body.offset <= bounds.max:
                raise AmsError(
                    400,
                    f"Offset out of bounds: {body.offset} is not from {bounds.min} (the oldest "
                    f"the retention log keeps) to {bounds.max}; nothing was changed",
                )
            replay.log.current(sub, topic)  # a subscription new to the log gets its row
            replay.log.set_current(sub, body.offset)
            state.conn = None  # the next pull starts there, forgetting what was handed out
        return {}

    @app.get(f"{_SUB}:timeToOffset", response_model=OffsetOut, include_in_schema=shown)
    def time_to_offset(project: Name, sub: Name, when: When, who: User) -> dict[str, Any]:
        replay, topic = replay_of(project, who, sub, "time_to_offset_sub")
        stamp = _zulu(when)
        away = replay.refresh(topic)
        offset = replay.log.time_to_offset(topic, int(stamp.timestamp() * 1000))
        if offset is None and away is not None:
            raise away  # a later message may be at the broker still
        if offset is None:
            raise AmsError(
                409,
                "Timestamp is out of bounds for the subscription's topic/partition: no "
                f"message kept was published at {when} or later",
                status="CONFLICT",
            )
        return {"offset": offset}


def _zulu(text: str) -> datetime:
    """AMS's time: ``2026-12-06T12:00:00.000Z``, in UTC (a space for ``T`` too)."""
    try:
        if text.endswith("Z"):
            return datetime.fromisoformat(text[:-1]).replace(tzinfo=timezone.utc)
    except ValueError:
        pass
    raise AmsError(
        400, f"Time is not in valid Zulu format: {text[:60]!r}; e.g. 2026-12-06T12:00:00.000Z"
    )
