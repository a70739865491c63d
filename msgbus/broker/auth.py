"""Who may connect and how much they may use: logins, TLS client certificates, limits."""

from __future__ import annotations

import collections
import hmac
import ssl
from typing import Protocol

from msgbus.broker.config import BrokerConfig
from msgbus.config import ControlConfig
from msgbus.errors import ConfigError
from msgbus.permissions import AccessPolicy, Action

__all__ = ["AccessDenied", "Gatekeeper", "LimitExceeded", "Owner", "server_ssl_context"]


class Waiting(Protocol):
    """A socket that has not logged in yet."""

    def evict(self) -> None: ...


class LimitExceeded(Exception):
    """A configured limit refuses the request; the text goes into the ERROR frame."""


class QueueFull(LimitExceeded):
    """A queue is at ``max_queue_depth`` for now: the producer waits until it has room
    (flow control), and is refused transiently only when none comes in time."""

    def __init__(self, message: str, queue: str) -> None:
        super().__init__(message)
        self.queue = queue


def server_ssl_context(config: BrokerConfig) -> ssl.SSLContext | None:
    """The TLS context of the listener, or None without ``tls`` configured."""
    tls = config.tls
    if tls is None:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    password = tls.key_password.get_secret_value() if tls.key_password else None
    try:
        ctx.load_cert_chain(tls.cert, tls.key, password)
        if tls.client_ca is not None:
            ctx.load_verify_locations(cafile=tls.client_ca)
            ctx.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot load the broker TLS certificate/key/CA ({tls.cert}, {tls.key}, "
            f"{tls.client_ca}): {exc}; check the tls section of the broker configuration"
        ) from None
    return ctx


class AccessDenied(Exception):
    """The user's groups do not grant the action; the text goes into the ERROR frame."""


class Owner:
    """Who creates destinations: one connection, logged in as ``user`` (anonymous
    clients as ``anonymous@address``, so one address cannot spend everyone's budget)."""

    __slots__ = ("created", "groups", "user")

    def __init__(self, user: str, groups: frozenset[str]) -> None:
        self.user = user
        self.groups = groups
        self.created = 0


class Gatekeeper:
    """Authentication, authorization and per-broker limits, consulted by every session."""

    def __init__(self, config: BrokerConfig) -> None:
        self._users = {
            name: (user.password.get_secret_value().encode(), user.member_of())
            for name, user in config.users.items()
        }
        self.limits = config.limits
        self.policy = (
            AccessPolicy(config.permissions, open_to_all=ControlConfig().destinations())
            if config.permissions
            else None
        )
        # Queue names outside max_destinations: control must work when clients used it up.
        self._reserved = "/queue/" + ControlConfig().prefix + "."
        self._created_by: collections.Counter[str] = collections.Counter()
        self.connections = 0
        self.logins = 0  # since start: a client reconnecting in a loop shows here
        # Sockets that have not logged in, oldest first; they never count in connections.
        self.pending: collections.OrderedDict[Waiting, None] = collections.OrderedDict()

    # -- connections ------------------------------------------------------------------

    def admit_pending(self, session: Waiting) -> Waiting | None:
        """Take a new socket; returns the oldest waiting one if it must make room."""
        evicted = None
        if len(self.pending) >= self.limits.max_pending_connections:
            evicted, _ = self.pending.popitem(last=False)
        self.pending[session] = None
        return evicted

    def log_in(self, session: Waiting) -> None:
        """Move ``session`` from the waiting sockets to the connections, if there is room."""
        if self.connections >= self.limits.max_connections:
            raise LimitExceeded(
                f"the broker is at its limit of {self.limits.max_connections} connections; "
                "retry later or raise limits.max_connections"
            )
        self.pending.pop(session, None)
        self.connections += 1
        self.logins += 1

    def release(self, session: Waiting, *, logged_in: bool) -> None:
        self.pending.pop(session, None)
        if logged_in:
            self.connections -= 1

    def authenticate(self, login: str | None, passcode: str | None, peer: str) -> Owner | None:
        """Who logged in (anyone, if no users are configured: then by address ``peer``),
        or None when the login is refused."""
        if not self._users:
            return Owner(f"anonymous@{peer}", frozenset())
        expected, groups = self._users.get(login or "", (None, frozenset()))
        # Compare even for unknown users so a wrong login costs the same as a wrong password.
        given = (passcode or "").encode()
        if hmac.compare_digest(expected or b"\0" + given, given) and expected is not None:
            return Owner(login or "", groups)
        return None

    # -- destinations -----------------------------------------------------------------

    def authorize(self, owner: Owner, action: Action, destination: str) -> None:
        if self.policy is not None and not self.policy.allows(owner.groups, action, destination):
            verb = {"read": "read from", "write": "write to", "admin": "create"}[action]
            raise AccessDenied(
                f"user {owner.user} may not {verb} {destination}; ask the broker's operator "
                f"for {action} permission on it (permissions in the broker configuration)"
            )

    def is_reserved(self, name: str) -> bool:
        """A control queue: outside the budgets of the clients (see check_new_destination)."""
        return name.startswith(self._reserved)

    def check_new_destination(
        self,
        name: str,
        existing: tuple[int, int],
        owner: Owner | None,
        planned: int = 0,
        *,
        subscribing: bool = False,
    ) -> None:
        """Raise LimitExceeded unless ``owner`` may create queue ``name`` now. ``existing``:
        (queues, control queues among them) the broker holds; ``planned``: queues the same
        transaction creates before it; ``subscribing``: a SUBSCRIBE creates it.

        The per-user budget (per address for anonymous clients, so shared by every local
        process) bounds what a user creates by sending; a stranger can spend it all. A
        queue a SUBSCRIBE creates is what its subscriber listens on, and a control queue
        is a component's own: neither is refused by that shared budget. Control queues
        have a pool of ``max_destinations`` of their own, so clients that used up the
        broker's cannot keep components from being controlled.
        """
        limits = self.limits
        reserved = self.is_reserved(name)
        if owner is not None:
            if owner.created + planned >= limits.max_destinations_per_connection:
                raise LimitExceeded(
                    f"this connection already created {owner.created} queues, the limit is "
                    f"{limits.max_destinations_per_connection}; reuse destination names"
                )
            shared = self._created_by[owner.user] + planned
            if not (subscribing or reserved) and shared >= limits.max_destinations_per_user:
                raise LimitExceeded(
                    f"{owner.user} already created {self._created_by[owner.user]} queues, the "
                    f"limit is {limits.max_destinations_per_user}; reuse destination names"
                )
        queues, control = existing
        held, kind = (control, "control queues") if reserved else (queues - control, "queues")
        if held + planned >= limits.max_destinations:
            raise LimitExceeded(
                f"the broker already holds {held} {kind}, the limit is "
                f"{limits.max_destinations}; reuse destination names"
            )

    def created(self, owner: Owner | None) -> None:
        if owner is not None:
            owner.created += 1
            self._created_by[owner.user] += 1

    def dropped(self, creator: str | None) -> None:
        """A queue ``creator`` made is gone: it no longer counts against them."""
        if creator is not None and self._created_by[creator] > 0:
            self._created_by[creator] -= 1

    def check_subscriptions(self, count: int) -> None:
        if count >= self.limits.max_subscriptions:
            raise LimitExceeded(
                f"this connection already has {count} subscriptions, the limit is "
                f"{self.limits.max_subscriptions}; unsubscribe first"
            )

    def check_depth(self, name: str, depth: int, adding: int = 1) -> None:
        """QueueFull unless ``adding`` messages fit ``name``, which holds ``depth``. A
        transaction larger than the limit waits for an empty queue: its messages are in
        the broker's memory already, and refusing it for good would make a publisher's
        default batch fail on a queue with a small limit."""
        limit = self.limits.max_queue_depth
        if depth and depth + adding > limit:
            raise QueueFull(
                f"{name} holds {depth} messages, the limit is {limit}; consume from it or "
                "raise limits.max_queue_depth",
                name,
            )
