"""Who may send control commands, and how a component checks it.

Most brokers do not show receivers the STOMP login of a sender, so a request names
its sender in the body, and that claim is checked like this:

* ``status`` is open to anyone: it tells no more than the presence topic does.
* Every other command needs the sender in ``control.allowed_users`` (an empty list
  refuses them all).
* When ``control.secrets`` holds a secret for the sender, the request must carry an
  HMAC-SHA256 of its exact body under that secret, be no older (or newer) than
  ``control.max_clock_skew``, not be signed before this component started, and not
  repeat a request id seen before.

Threat model. Protected: forged commands (no secret, no valid signature), redirected
ones (the target is signed), and replays of a captured signed command, within a run
(request ids seen are remembered for the skew window) and across restarts and
configuration reloads (a request signed before the component started is refused; the
ids seen are kept through a reload). That last rule needs the clocks of operators and
components to agree (NTP), as the skew window does already; a legitimate command
signed by a clock running behind, right after a restart, is refused with a message
saying so and can simply be sent again. Not protected: a user without a secret is
believed on the claim alone, so anyone who can write to the control destinations can
pretend to be them (give every allowed user a secret where that matters); secrets are
shared by the user and every component (not public-key signatures); replies are not
authenticated; ``status`` is open to anyone.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import threading
import time

from msgbus.config import ControlConfig
from msgbus.errors import ControlError
from msgbus.presence.messages import ControlRequest

__all__ = ["OPEN_COMMANDS", "Authorizer", "sign"]

OPEN_COMMANDS = frozenset({"status"})
_SCHEME = "hmac-sha256="
_REMEMBERED_IDS = 10_000


def sign(body: bytes, secret: str) -> str:
    """The signature header value for ``body``."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return _SCHEME + digest


class Authorizer:
    """Checks requests against ``control`` settings; safe to share between threads."""

    def __init__(self, control: ControlConfig, *, not_before: float | None = None) -> None:
        self._allowed = frozenset(control.allowed_users)
        self._secrets = {user: s.get_secret_value() for user, s in control.secrets.items()}
        self._skew = control.max_clock_skew
        # Requests signed before this (the component's start) are replays or stale.
        self._not_before = time.time() if not_before is None else not_before
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._lock = threading.Lock()

    def reconfigured(self, control: ControlConfig) -> Authorizer:
        """The same checks under new ``control`` settings, keeping the request ids seen
        and the start time, so a reload opens no window for replays."""
        fresh = Authorizer(control, not_before=self._not_before)
        with self._lock:
            fresh._seen = collections.OrderedDict(self._seen)
        return fresh

    def check(
        self, request: ControlRequest, body: bytes, signature: str | None, now: float | None = None
    ) -> None:
        """Return when ``request`` may run; raise ControlError saying why not."""
        if request.command in OPEN_COMMANDS:
            return
        sender = request.sender
        if sender not in self._allowed:
            raise ControlError(
                f"user {sender!r} may not send {request.command!r}: not in "
                "control.allowed_users of this component"
            )
        secret = self._secrets.get(sender)
        if secret is None:
            return
        if signature is None or not hmac.compare_digest(signature, sign(body, secret)):
            raise ControlError(
                f"command {request.command!r} from {sender!r} has a missing or wrong "
                "signature; the sender must use the same control.secrets entry"
            )
        age = (time.time() if now is None else now) - request.sent_at
        if abs(age) > self._skew:
            raise ControlError(
                f"command {request.command!r} from {sender!r} is {age:.0f} s old; refused "
                f"beyond control.max_clock_skew ({self._skew:g} s): check the clocks"
            )
        if request.sent_at < self._not_before:
            raise ControlError(
                f"command {request.command!r} from {sender!r} was signed before this "
                "component started (a replay, or a clock running behind): send it again, "
                "and check the clocks if this repeats"
            )
        with self._lock:
            if request.id in self._seen:
                raise ControlError(f"request {request.id} was already executed (a replay)")
            self._seen[request.id] = None
            while len(self._seen) > _REMEMBERED_IDS:
                self._seen.popitem(last=False)
