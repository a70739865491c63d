"""AMS's per-user ACLs (``:acl``, ``:modifyAcl``) over ``gateway.permissions``.

On AMS a topic's ACL lists the users who may publish to it and a subscription's the users
who may pull from it. Here they add to the configured permissions, never take away:

* a user on a topic's ACL may publish to it (``write``) whatever its groups;
* a user on a subscription's ACL may pull from it, acknowledge, change its deadline and
  delete it (``read``, that subscription only) whatever its groups;
* ``:acl`` answers who may do that now: the users whose groups the permissions allow,
  plus those listed; ``:modifyAcl`` replaces the list (empty: only the groups remain);
* changing an ACL takes ``admin`` on the topic, as creating and deleting it does.

Without ``gateway.permissions`` every user may do everything, so an ACL adds nothing
(``:acl`` lists every user). Lists are kept in ``state_dir/acl.json``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Literal

from msgbus.gateway.amserror import AmsError

__all__ = ["AclStore", "Kind"]

Kind = Literal["topics", "subscriptions"]


class AclStore:
    """The users listed on topics and subscriptions; thread-safe."""

    def __init__(self, state_dir: Path) -> None:
        self._path = Path(state_dir) / "acl.json"
        self._lock = threading.Lock()
        self._lists: dict[str, dict[str, list[str]]] = {"topics": {}, "subscriptions": {}}
        if self._path.exists():
            data = json.loads(self._path.read_text())
            for kind in self._lists:
                self._lists[kind] = {k: list(v) for k, v in data.get(kind, {}).items()}

    def listed(self, kind: Kind, name: str) -> list[str]:
        with self._lock:
            return list(self._lists[kind].get(name, []))

    def grants(self, user: str, kind: Kind, name: str) -> bool:
        with self._lock:
            return user in self._lists[kind].get(name, ())

    def modify(self, kind: Kind, name: str, users: Sequence[str], known: Collection[str]) -> None:
        """Replace the list; a 404 naming users the gateway does not know, as AMS's."""
        unknown = sorted(set(users) - set(known))
        if unknown:
            raise AmsError(404, f"User(s) {', '.join(unknown)} do not exist (gateway.users)")
        with self._lock:
            if users:
                self._lists[kind][name] = sorted(set(users))
            else:
                self._lists[kind].pop(name, None)
            self._save()

    def forget(self, kind: Kind, name: str) -> None:
        """A deleted topic or subscription: a new one of that name starts without a list."""
        with self._lock:
            if self._lists[kind].pop(name, None) is not None:
                self._save()

    def _save(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._lists, indent=1))
        tmp.replace(self._path)  # never a half-written file
