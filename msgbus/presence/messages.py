"""Wire format of presence announcements and control requests/replies (JSON bodies).

Destinations, for a component named N of kind K at site S (``prefix`` is
``control.prefix``, default ``msgbus.control``):

* ``control.presence_topic``: announcements (start, every interval, clean stop);
* ``/queue/<prefix>.<N>``: commands for that one component;
* ``/topic/<prefix>.kind.<K>``, ``/topic/<prefix>.site.<S>``, ``/topic/<prefix>.all``:
  broadcast rooms every such component listens to.

Names are folded to ``[A-Za-z0-9_-]`` for destinations (``.`` is ActiveMQ's hierarchy
separator, ``*``/``>`` its wildcards); two names folding alike share a queue, so each
request also carries its target and a component ignores requests meant for another.
"""

from __future__ import annotations

import os
import re
import socket
import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from msgbus.errors import ControlError

__all__ = [
    "SIGNATURE_HEADER",
    "Announcement",
    "ControlReply",
    "ControlRequest",
    "Destinations",
    "Target",
    "default_name",
    "parse",
]

SIGNATURE_HEADER = "msgbus-signature"
CONTENT_TYPE = "application/json"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def default_name(kind: str) -> str:
    """``kind@host:pid``, the name a component gets without ``--name``."""
    return f"{kind}@{socket.gethostname()}:{os.getpid()}"


def fold(name: str) -> str:
    return _UNSAFE.sub("_", name)


class Destinations:
    """Destination names derived from ``control.prefix``."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def queue(self, name: str) -> str:
        return f"/queue/{self.prefix}.{fold(name)}"

    def kind(self, kind: str) -> str:
        return f"/topic/{self.prefix}.kind.{fold(kind)}"

    def site(self, site: str) -> str:
        return f"/topic/{self.prefix}.site.{fold(site)}"

    def everyone(self) -> str:
        return f"/topic/{self.prefix}.all"


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Target(_Wire):
    """Who a request is for: one name, every component of a kind or site, or all."""

    scope: Literal["name", "kind", "site", "all"]
    value: str = ""

    def destination(self, dest: Destinations) -> str:
        if self.scope == "name":
            return dest.queue(self.value)
        if self.scope == "kind":
            return dest.kind(self.value)
        if self.scope == "site":
            return dest.site(self.value)
        return dest.everyone()

    def matches(self, name: str, kind: str, site: str | None) -> bool:
        if self.scope == "all":
            return True
        if self.scope == "name":
            return self.value == name
        if self.scope == "kind":
            return self.value == kind
        return self.value == site

    def __str__(self) -> str:
        return "all components" if self.scope == "all" else f"{self.scope} {self.value!r}"


class Announcement(_Wire):
    """A component saying it is there (``event``: start, alive, stop)."""

    type: Literal["presence"] = "presence"
    event: Literal["start", "alive", "stop"] = "alive"
    name: str
    kind: str
    site: str | None = None
    host: str
    pid: int
    version: str
    state: str
    started_at: float
    sent_at: float
    interval: float
    control: str
    counters: dict[str, float] = Field(default_factory=dict)


class ControlRequest(_Wire):
    """A command; the signature (when any) covers exactly the encoded body."""

    type: Literal["control-request"] = "control-request"
    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    command: str = Field(min_length=1, max_length=64)
    args: dict[str, Any] = Field(default_factory=dict)
    sender: str
    target: Target
    sent_at: float = Field(default_factory=time.time)


class ControlReply(_Wire):
    """One component's answer to one request."""

    type: Literal["control-reply"] = "control-reply"
    request_id: str
    name: str
    kind: str
    site: str | None = None
    command: str
    ok: bool
    result: Any = None
    error: str | None = None


def parse(body: bytes) -> Announcement | ControlRequest | ControlReply:
    """Decode one presence/control body; ControlError when it is none of them."""
    try:
        kind = _Kind.model_validate_json(body).type
        if kind == "presence":
            return Announcement.model_validate_json(body)
        if kind == "control-request":
            return ControlRequest.model_validate_json(body)
        return ControlReply.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(body)"
        raise ControlError(
            f"not a msgbus presence/control message ({where}: {first['msg']}); is another "
            "application using the control destinations?"
        ) from None


class _Kind(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["presence", "control-request", "control-reply"]
