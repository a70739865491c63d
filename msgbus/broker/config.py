"""Typed configuration of the embedded broker: YAML file plus command-line overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

# The YAML reading and error wording are shared with the client configuration.
from msgbus.config import deep_merge, describe_validation_error, drop_none, read_yaml
from msgbus.errors import ConfigError
from msgbus.permissions import DEFAULT_GROUP, Permission, require_known_groups
from msgbus.stomp import Limits

__all__ = ["BrokerConfig", "BrokerLimits", "BrokerTLS", "BrokerUser", "load_broker_config"]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BrokerTLS(_Section):
    """Server certificate; ``client_ca`` makes client certificates mandatory."""

    cert: Path = Field(description="Server certificate (PEM)")
    key: Path = Field(description="Its private key (PEM)")
    key_password: SecretStr | None = Field(
        default=None,
        repr=False,
        description="Passphrase of an encrypted key",
    )
    client_ca: Path | None = Field(
        None,
        description="CA certificates client certificates must chain to; set: client "
        "certificates are mandatory",
    )


class BrokerUser(_Section):
    """A login with its groups, which ``permissions`` name."""

    password: SecretStr = Field(repr=False, description="The user's STOMP passcode")
    groups: list[str] = Field(
        default_factory=list,
        description="Groups permissions name (none: the default group)",
    )

    def member_of(self) -> frozenset[str]:
        return frozenset(self.groups or [DEFAULT_GROUP])


class BrokerLimits(_Section):
    """Bounds that protect the broker; exceeding one earns the client an ERROR frame,
    but for a full queue (``max_queue_depth``) or a store behind by
    ``max_unwritten_bytes``, which hold their producers for up to ``flow_control_wait``
    (flow control) before a transient ERROR.

    Sockets that have not logged in yet have their own, smaller budget
    (``max_pending_connections``): when it is full the oldest of them is closed, so
    idle or slow sockets can never take the slots of clients that logged in.
    New destinations are budgeted per connection and per user (anonymous clients per
    address), so one client cannot use up ``max_destinations`` for everyone. What a
    stranger can use up never locks a component out: queues a SUBSCRIBE creates and
    msgbus's control queues are outside the per-user budget (which every local anonymous
    client shares), and control queues have a pool of ``max_destinations`` of their own.
    """

    max_connections: int = Field(1000, ge=1, description="Logged-in connections at most")
    max_pending_connections: int = Field(
        100,
        ge=1,
        description="Sockets not logged in yet at most; when full the oldest is closed",
    )
    max_frame_bytes: int = Field(
        4 * 1024 * 1024,
        ge=1024,
        description="Largest frame (and body) a client may send",
    )
    max_header_bytes: int = Field(
        64 * 1024,
        ge=256,
        description="Largest total size of a frame's headers",
    )
    max_headers: int = Field(256, ge=8, description="Most headers in one frame")
    max_queue_depth: int = Field(
        100_000,
        ge=1,
        description="Messages one queue may hold; a SEND beyond it earns an ERROR",
    )
    max_subscriptions: int = Field(1000, ge=1, description="Subscriptions per connection at most")
    max_destinations: int = Field(
        10_000,
        ge=1,
        description="Destinations in the broker at most (presence and control outside it)",
    )
    max_destinations_per_connection: int = Field(
        1000,
        ge=1,
        description="New destinations one connection may create",
    )
    max_destinations_per_user: int = Field(
        2000,
        ge=1,
        description="New destinations one user (anonymous: one address) may create",
    )
    max_unwritten_bytes: int = Field(
        8 << 20,
        ge=64 << 10,
        description="Bytes of persistent messages received but not yet committed to the "
        "store, at most: past it the broker stops reading persistent SENDs (flow control) "
        "until a commit makes room, so a burst costs this much memory and a commit of "
        "this size at most",
    )
    flow_control_wait: float = Field(
        10.0,
        gt=0,
        description="Seconds a producer is held (its connection not read, its receipts "
        "withheld) while a queue it sends to is at max_queue_depth, or the store is "
        "behind by max_unwritten_bytes, before its message "
        "is refused with a transient ERROR (msgbus-transient: true) "
        "that publishers retry later; keep it below the clients' receipt timeout (30 s)",
    )

    def frame_limits(self) -> Limits:
        return Limits(
            max_frame_bytes=self.max_frame_bytes,
            max_header_bytes=self.max_header_bytes,
            max_headers=self.max_headers,
            max_body_bytes=self.max_frame_bytes,
        )


class BrokerConfig(_Section):
    """Everything ``msgbus broker serve`` and ``EmbeddedBroker`` need.

    ``data_dir`` None keeps everything in memory: persistent messages then do not
    survive a restart. An empty ``users`` mapping allows anonymous logins; with users,
    only they may log in. A user is a password, or a password and groups. Without
    ``permissions`` every user may use every destination; with them, only what they
    grant (see :mod:`msgbus.permissions`, the words of ``brokers/*.yaml``), plus
    msgbus's presence and control destinations, open to every user. As YAML::

        name: site-broker
        port: 61613
        data_dir: /var/lib/msgbus/broker
        users:
          probe: {password: s3cret, groups: [probes]}
          reader: {password: t0p, groups: [consumers]}
        permissions:
          - {destination: /topic/grid.>, write: [probes], read: [consumers]}
          - {destination: "/queue/Consumer.*.VirtualTopic.>", read: [consumers], admin: [consumers]}
        tls: {cert: server.pem, key: server.key, client_ca: grid-ca.pem}
        limits: {max_connections: 500, max_queue_depth: 200000}
    """

    name: str = Field(
        "msgbus",
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="The broker's name (message ids, presence, metrics label)",
    )
    host: str = Field("127.0.0.1", description="Address to listen on")
    port: int = Field(
        61613,
        ge=0,
        le=65535,
        description="STOMP port to listen on, 0 for any free one",
    )
    data_dir: Path | None = Field(
        None,
        description="Directory of the SQLite store; none: in memory, persistent messages do "
        "not survive a restart",
    )
    users: dict[str, BrokerUser] = Field(
        default_factory=dict,
        repr=False,
        description="Logins by name; none: anonymous logins are allowed",
    )
    permissions: list[Permission] = Field(
        default_factory=list,
        description="Who may read, write and create which destinations; none: every user may "
        "use every destination",
    )
    tls: BrokerTLS | None = Field(None, description="Serve STOMP over TLS with this certificate")
    limits: BrokerLimits = Field(
        default_factory=BrokerLimits,
        description="Bounds that protect the broker",
    )
    heartbeat_ms: tuple[int, int] = Field(
        (10_000, 10_000),
        description="STOMP heart-beats offered: (can send every, want every) ms",
    )
    connect_timeout: float = Field(
        30.0,
        gt=0,
        description="Seconds a new socket has to log in before it is closed",
    )
    default_prefetch: int = Field(
        1000,
        ge=1,
        description="Unacknowledged messages per subscription when the client names none",
    )
    max_redeliveries: int = Field(
        6,
        ge=0,
        description="Redeliveries of a message before it is dead-lettered",
    )
    metrics_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="Serve Prometheus metrics on this port; none: not served",
    )

    @model_validator(mode="before")
    @classmethod
    def _password_only_users(cls, data: Any) -> Any:
        # ``users: {probe: s3cret}`` (a password alone) stays valid: no groups.
        if isinstance(data, dict) and isinstance(data.get("users"), dict):
            data = {
                **data,
                "users": {
                    name: value if isinstance(value, dict | BrokerUser) else {"password": value}
                    for name, value in data["users"].items()
                },
            }
        return data

    @model_validator(mode="after")
    def _check_permissions(self) -> BrokerConfig:
        if self.permissions and not self.users:
            raise ValueError(
                "permissions need users: declare users with groups, or drop the permissions"
            )
        require_known_groups((u.member_of() for u in self.users.values()), self.permissions)
        return self


def load_broker_config(path: Path | None = None, **overrides: Any) -> BrokerConfig:
    """Validate the YAML file at ``path`` (optional) under flag ``overrides`` (None = unset)."""
    data = read_yaml(path) if path is not None else {}
    source = str(path) if path is not None else "command line"
    try:
        return BrokerConfig(**deep_merge(data, drop_none(overrides)))
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, source)) from None
