"""Users, groups and per-destination permissions: one model for every broker msgbus runs.

The YAML words are ActiveMQ's (``read``, ``write``, ``admin`` lists of groups per
destination pattern), so the same ``users``/``permissions`` sections configure the
embedded broker and a rendered ActiveMQ network, and one matcher decides for both:

* a pattern uses ActiveMQ wildcards, ``*`` for one name element and ``>`` for the rest;
* every entry that matches a destination adds its groups (ActiveMQ's authorization map
  unions them too); no matching entry means nobody may;
* ``read`` is subscribing, ``write`` sending, ``admin`` creating a destination that does
  not exist yet;
* a user without groups is in ``users``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "DEFAULT_GROUP",
    "AccessPolicy",
    "Action",
    "Permission",
    "User",
    "check_destination",
    "destination_matches",
    "require_known_groups",
    "unknown_groups",
]

Action = Literal["read", "write", "admin"]
DEFAULT_GROUP = "users"
_NAME = r"^[A-Za-z][A-Za-z0-9_-]{0,62}$"
# Destinations are written as STOMP names: /queue/x or /topic/x, ActiveMQ wildcards allowed.
_DEST = r"^/(queue|topic)/[^\s]+$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class User(_Model):
    name: str = Field(pattern=_NAME, description="Login name")
    password: str = Field(min_length=1, description="Its password")
    groups: list[str] = Field(
        default_factory=list,
        description="Groups permissions name (none: the default group)",
    )

    def member_of(self) -> frozenset[str]:
        return frozenset(self.groups or [DEFAULT_GROUP])


class Permission(_Model):
    """Who may read, write and administer (create) a destination or wildcard."""

    destination: str = Field(
        description="Destination or ActiveMQ wildcard: * is one name element, > the rest",
    )
    read: list[str] = Field(
        default_factory=list,
        description="Groups that may subscribe to it and receive from it",
    )
    write: list[str] = Field(default_factory=list, description="Groups that may send to it")
    admin: list[str] = Field(default_factory=list, description="Groups that may create it")

    @model_validator(mode="after")
    def _check(self) -> Permission:
        check_destination(self.destination)
        return self

    def groups(self, action: Action) -> list[str]:
        return self.read if action == "read" else self.write if action == "write" else self.admin


def check_destination(dest: str) -> None:
    if not re.match(_DEST, dest):
        raise ValueError(f"destination {dest!r} must look like /queue/NAME or /topic/NAME")


def destination_matches(pattern: str, destination: str) -> bool:
    """ActiveMQ wildcard match: ``*`` is one name element, ``>`` the rest (or nothing)."""
    pkind, _, pname = pattern.lstrip("/").partition("/")
    dkind, _, dname = destination.lstrip("/").partition("/")
    if pkind != dkind:
        return False
    pparts, dparts = pname.split("."), dname.split(".")
    for i, part in enumerate(pparts):
        if part == ">":
            return True
        if i >= len(dparts) or part not in ("*", dparts[i]):
            return False
    return len(pparts) == len(dparts)


def unknown_groups(
    memberships: Iterable[frozenset[str]], permissions: Iterable[Permission]
) -> list[str]:
    """Groups the permissions name that no user is in (a typo locks everyone out)."""
    known = {g for groups in memberships for g in groups}
    return sorted({g for p in permissions for g in p.read + p.write + p.admin} - known)


def require_known_groups(
    memberships: Iterable[frozenset[str]], permissions: Iterable[Permission]
) -> None:
    """ValueError (for a pydantic validator) when the permissions name an unknown group."""
    unknown = unknown_groups(memberships, permissions)
    if unknown:
        raise ValueError(
            f"permissions name groups no user is in: {unknown}; add them to users' "
            "groups or correct the permissions"
        )


class AccessPolicy:
    """Answers "may these groups do this to that destination", caching per destination.

    ``open_to_all``: patterns every authenticated user may read, write and create
    (msgbus's own presence and control destinations, which components authorize
    themselves).
    """

    def __init__(self, permissions: Sequence[Permission], open_to_all: Sequence[str] = ()) -> None:
        self._permissions = list(permissions)
        self._open = list(open_to_all)
        self._cache: dict[tuple[str, Action], frozenset[str] | None] = {}

    def _allowed_groups(self, action: Action, destination: str) -> frozenset[str] | None:
        """The groups allowed, or None when everyone is."""
        key = (destination, action)
        if key in self._cache:
            return self._cache[key]
        allowed: frozenset[str] | None
        if any(destination_matches(p, destination) for p in self._open):
            allowed = None
        else:
            allowed = frozenset(
                g
                for p in self._permissions
                if destination_matches(p.destination, destination)
                for g in p.groups(action)
            )
        # Bounded: a client naming endless destinations must not grow the cache forever.
        if len(self._cache) >= 10_000:
            self._cache.clear()
        self._cache[key] = allowed
        return allowed

    def allows(self, groups: frozenset[str], action: Action, destination: str) -> bool:
        allowed = self._allowed_groups(action, destination)
        return allowed is None or not allowed.isdisjoint(groups)
