"""The broker-network topology model, loaded from YAML and validated once.

A topology names brokers, the links between them, per-destination policies, users
with their permissions and TLS material. Everything that would make a network
misbehave at run time (unknown broker in a link, two brokers on one port, a link
cycle that a TTL would let messages go round) is rejected here, with the field.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from msgbus.errors import NetworkError
from msgbus.network.topology_tls import Tls
from msgbus.permissions import Permission, User, destination_matches, unknown_groups
from msgbus.permissions import check_destination as _check_destination

__all__ = [
    "Broker",
    "BrokerLimits",
    "ConsumerGroup",
    "DestinationPolicy",
    "Link",
    "Permission",
    "Ports",
    "Security",
    "Tls",
    "Topology",
    "User",
    "destination_matches",
    "load_topology",
    "parse_topology",
]

_NAME = r"^[A-Za-z][A-Za-z0-9_-]{0,62}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Ports(_Model):
    """Listening ports of one broker."""

    stomp: int = Field(ge=1, le=65535, description="STOMP port")
    openwire: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="OpenWire port, which carries the network bridges (ActiveMQ; required there)",
    )
    amqp: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="AMQP 0-9-1 port of a RabbitMQ node (RabbitMQ; required there)",
    )
    dist: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Erlang distribution port a RabbitMQ node's peers and rabbitmqctl reach "
        "it on (RabbitMQ; required there)",
    )
    stomp_ssl: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="STOMP+SSL port (needs tls)",
    )

    def all(self) -> list[int]:
        ports = (self.stomp, self.openwire, self.stomp_ssl, self.amqp, self.dist)
        return [p for p in ports if p is not None]


class BrokerLimits(_Model):
    """Bounds rendered on every transport connector (ActiveMQ's DoS protection): a STOMP
    frame or body over ``max_frame_bytes`` is refused, as by the embedded broker.

    ActiveMQ counts sockets that never log in against ``max_connections`` too (it has
    no separate budget for them, unlike the embedded broker): the cap is set well above
    the clients a broker serves (STOMP runs on NIO, so an idle socket costs heap, not a
    thread: 10,000 fit in the default 256 MB heap), and ``login_timeout_ms`` closes a
    silent socket early.
    """

    max_frame_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1024,
        description="Largest STOMP frame or body a client may send",
    )
    max_connections: int = Field(
        default=16384,
        ge=1,
        description="Connections per transport connector, sockets not logged in included",
    )
    login_timeout_ms: int = Field(
        default=10_000,
        ge=1000,
        description="Milliseconds a new socket has to log in before it is closed",
    )
    stomp_nio: bool = Field(
        default=True,
        description="STOMP on NIO (stomp+nio://): idle sockets cost heap, not a thread "
        "each, so 10,000 of them do not lock clients out. Off (stomp://, a thread per "
        "socket) gave 1.4x the persistent and 2.3x the non-persistent throughput of one "
        "connection on 2026-12-05, for networks no stranger can reach",
    )


class Broker(_Model):
    """One ActiveMQ broker process."""

    name: str = Field(pattern=_NAME, description="The broker's name in the network")
    host: str = Field("127.0.0.1", description="Host the broker runs on")
    ports: Ports = Field(description="Its listening ports")
    data_dir: Path | None = Field(
        None,
        description="Directory of its KahaDB store and files (default: under the state directory)",
    )
    heap_mb: int = Field(default=256, ge=64, le=65536, description="JVM heap in MiB")
    openwire_bind: str = Field(
        "127.0.0.1",
        description="Address OpenWire listens on; other hosts need it only when links cross hosts",
    )
    stomp_bind: str = Field("127.0.0.1", description="Address plain STOMP listens on")
    jvm_options: list[str] = Field(
        default_factory=list,
        description="Extra JVM flags, e.g. test brokers trade peak speed for a quicker start-up",
    )
    store_mb: int = Field(
        default=2048,
        ge=16,
        description="Persistent store limit in MiB (ActiveMQ storeUsage)",
    )
    temp_mb: int = Field(
        default=512,
        ge=16,
        description="Temporary store limit in MiB, for non-persistent messages (tempUsage)",
    )
    flow_control_wait_ms: int | None = Field(
        default=None,
        ge=1,
        description="Producer flow control: a producer held longer than this (memory, "
        "store or temp usage full) is refused with ResourceAllocationException, which "
        "msgbus publishers hold back and retry (systemUsage sendFailIfNoSpaceAfterTimeout); "
        "unset: held until there is room, as ActiveMQ does by default",
    )
    limits: BrokerLimits = Field(
        default_factory=BrokerLimits,
        description="Bounds rendered on every transport connector",
    )


class Link(_Model):
    """A network connector: ``source`` forwards ``destinations`` to ``target``."""

    source: str = Field(alias="from", description="Broker that forwards (YAML key: from)")
    target: str = Field(alias="to", description="Broker it forwards to (YAML key: to)")
    duplex: bool = Field(False, description="Forward both ways over one connection")
    destinations: list[str] = Field(
        default_factory=lambda: ["/topic/>", "/queue/>"],
        description="Destinations (wildcards allowed) the link forwards",
    )
    ttl: int = Field(
        default=1,
        ge=1,
        le=32,
        description="Broker hops a message may cross (networkTTL)",
    )
    conduit: bool = Field(
        True,
        description="Fold the consumers behind a bridge into one demand (conduitSubscriptions)",
    )

    @model_validator(mode="after")
    def _check(self) -> Link:
        if self.source == self.target:
            raise ValueError(f"link {self.source} -> {self.target} points at itself")
        for dest in self.destinations:
            _check_destination(dest)
        return self


class DestinationPolicy(_Model):
    """Policy for a destination or wildcard (``/queue/grid.>``)."""

    name: str = Field(
        description="Destination or wildcard the policy applies to, e.g. /queue/grid.>",
    )
    dead_letter: Literal["individual", "shared", "discard"] = Field(
        "individual",
        description="Dead-letter queue per destination, one shared queue, or discard expired "
        "and undeliverable messages",
    )
    expire_check_ms: int | None = Field(
        default=None,
        ge=0,
        description="How often the broker sweeps this destination for expired messages (to "
        "the dead-letter queue)",
    )
    memory_limit_mb: int | None = Field(
        default=None,
        ge=1,
        description="Memory this destination may use, in MiB",
    )
    cursor: Literal["store", "vm"] = Field(
        default="store",
        description="Where pending messages wait: the store (ActiveMQ's default), or memory "
        "(vm), where memory_limit_mb bounds persistent messages too and producer flow "
        "control holds producers at that limit",
    )
    dead_letter_non_persistent: bool = Field(
        False,
        description="Dead-letter expired non-persistent messages too (usually noise, so off)",
    )
    delivery_limit: int | None = Field(
        default=None,
        ge=1,
        description="Engine rabbitmq: deliveries of a message before it is dead-lettered "
        "(quorum queues' delivery-limit; default 20)",
    )
    max_length: int | None = Field(
        default=None,
        ge=1,
        description="Engine rabbitmq: messages a consumer-group queue holds before new ones "
        "are refused (RabbitMQ closes the publisher's connection; msgbus holds them back, "
        "retries with back-off, then spools them); unset: no limit",
    )

    @model_validator(mode="after")
    def _check(self) -> DestinationPolicy:
        _check_destination(self.name)
        return self


class ConsumerGroup(_Model):
    """A virtual-topic consumer group and the brokers its consumers attach to.

    Its queues are created at start on every broker (a message waits in them where it
    was confirmed) and forwarded on demand towards the brokers its consumers use.
    """

    name: str = Field(
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The group's name: its queues are Consumer.<name>.VirtualTopic.X",
    )
    brokers: list[str] = Field(min_length=1, description="Brokers its consumers attach to")


class Security(_Model):
    authentication: bool = Field(
        True,
        description="Require logins; turning it off must be said in the topology",
    )
    admin_user: str = Field(
        "admin",
        description="The user msgbus's own status and verify probes log in as",
    )
    bridge_user: str = Field(
        "bridge",
        description="The user the bridges log in as (needed with links), granted only what "
        "bridging needs",
    )
    plaintext_stomp: bool = Field(
        False,
        description="With TLS, let plain STOMP be reached from other hosts (else it stays on "
        "the loopback interface)",
    )


class Topology(_Model):
    """A whole broker network."""

    name: str = Field(default="msgbus", pattern=_NAME, description="The network's name")
    engine: Literal["activemq", "rabbitmq"] = Field(
        default="activemq",
        description="activemq: a network of ActiveMQ brokers that forward over links (a "
        "message lives on the broker that confirmed it); rabbitmq: one RabbitMQ cluster "
        "whose consumer-group queues are quorum queues replicated to a majority of nodes "
        "before a message is confirmed",
    )
    brokers: list[Broker] = Field(min_length=1, description="Its brokers")
    links: list[Link] = Field(default_factory=list, description="Network connectors between them")
    destinations: list[DestinationPolicy] = Field(
        default_factory=list,
        description="Policies per destination or wildcard",
    )
    users: list[User] = Field(default_factory=list, description="Logins, the same on every broker")
    permissions: list[Permission] = Field(
        default_factory=list,
        description="Who may read, write and create which destinations (the embedded broker's"
        " words)",
    )
    security: Security = Field(
        default_factory=Security,
        description="Authentication and the users msgbus itself logs in as",
    )
    tls: Tls | None = Field(None, description="Key and trust stores for STOMP+SSL and the bridges")
    expiry_ms: int | None = Field(
        default=None,
        ge=1,
        description="Broker-wide default message expiry in ms (ActiveMQ has no per-"
        "destination default)",
    )
    virtual_topics: list[str] = Field(
        default_factory=list,
        description="Virtual topics (VirtualTopic.X, consumed as "
        "Consumer.<group>.VirtualTopic.X queues)",
    )
    consumer_groups: list[ConsumerGroup] = Field(
        default_factory=list,
        description="Virtual-topic consumer groups and the brokers their consumers attach to",
    )
    state_dir: Path | None = Field(
        None,
        description="Where msgbus network keeps pids, logs and rendered files, relative to "
        "the topology file (default: the user's state directory)",
    )

    def reachable(self, destination: str) -> set[tuple[str, str]]:
        """Ordered broker pairs (publisher's, subscriber's) a message on ``destination`` crosses."""
        if self.engine == "rabbitmq":  # one cluster routes every message to every node
            names = [b.name for b in self.brokers]
            return {(a, b) for a in names for b in names if a != b}
        return _reachable(self.links, [b.name for b in self.brokers], destination)

    def broker(self, name: str) -> Broker:
        for broker in self.brokers:
            if broker.name == name:
                return broker
        raise NetworkError(f"topology {self.name!r} has no broker {name!r}")

    def broker_names(self, names: Iterable[str] | None = None) -> list[str]:
        """``names`` checked against the topology (NetworkError for an unknown one), or
        every broker's name in order when None."""
        if names is None:
            return [b.name for b in self.brokers]
        wanted = list(names)
        for name in wanted:
            self.broker(name)
        return wanted

    @model_validator(mode="after")
    def _check(self) -> Topology:
        names = [b.name for b in self.brokers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"broker names must be unique; repeated: {', '.join(dupes)}")
        _check_ports(self.brokers)
        _check_engine(self)
        known = set(names)
        for link in self.links:
            for end in (link.source, link.target):
                if end not in known:
                    raise ValueError(
                        f"link {link.source} -> {link.target} names unknown broker {end!r}; "
                        f"known brokers: {', '.join(sorted(known))}"
                    )
        _check_cycles(self.links)
        for group in self.consumer_groups:
            unknown = sorted(set(group.brokers) - known)
            if unknown:
                raise ValueError(f"consumer group {group.name!r} names unknown brokers {unknown}")
        if self.security.authentication and not self.users:
            raise ValueError(
                "security.authentication is on but no users are declared: add users "
                "(and permissions), or set security.authentication: false for a test network"
            )
        users = {u.name for u in self.users}
        if self.security.authentication and self.security.admin_user not in users:
            raise ValueError(
                f"security.admin_user {self.security.admin_user!r} is not among the users"
            )
        if self.security.authentication and self.links and self.security.bridge_user not in users:
            raise ValueError(
                f"the links need security.bridge_user {self.security.bridge_user!r} among the "
                "users (a user of its own: it is granted only what bridging needs)"
            )
        unknown = unknown_groups((u.member_of() for u in self.users), self.permissions)
        if unknown:
            raise ValueError(
                f"permissions name groups no user is in: {unknown}; add them to users' "
                "groups or correct the permissions"
            )
        if any(b.ports.stomp_ssl for b in self.brokers) and self.tls is None:
            raise ValueError(
                "a broker declares ports.stomp_ssl but the topology has no tls section"
            )
        if self.tls is not None and not self.security.plaintext_stomp:
            for broker in self.brokers:
                if broker.stomp_bind not in ("127.0.0.1", "::1", "localhost"):
                    raise ValueError(
                        f"broker {broker.name!r}: with TLS, plaintext STOMP stays on the "
                        f"loopback interface, not {broker.stomp_bind}; clients use "
                        "ports.stomp_ssl (or set security.plaintext_stomp: true)"
                    )
        return self


def _check_engine(topology: Topology) -> None:
    """The ports and sections each engine needs, and none it would silently ignore."""
    needed = ("openwire",) if topology.engine == "activemq" else ("amqp", "dist")
    for broker in topology.brokers:
        for port in needed:
            if getattr(broker.ports, port) is None:
                raise ValueError(
                    f"broker {broker.name!r}: engine {topology.engine} needs ports.{port}"
                )
    if topology.tls is not None:
        topology.tls.check_engine(topology.engine)
    if topology.engine != "rabbitmq":
        if any(p.delivery_limit or p.max_length for p in topology.destinations):
            raise ValueError("delivery_limit and max_length are rendered for engine rabbitmq only")
        return
    if not topology.security.authentication:
        raise ValueError(
            "engine rabbitmq always authenticates: set security.authentication: true and "
            "declare users"
        )
    if topology.links:
        raise ValueError(
            "engine rabbitmq forms one cluster and has no links: remove the links section"
        )
    if len(topology.brokers) % 2 == 0:
        raise ValueError(
            f"engine rabbitmq needs an odd number of nodes (quorum queues keep working "
            f"while a majority is up), not {len(topology.brokers)}"
        )


def _check_ports(brokers: list[Broker]) -> None:
    seen: dict[tuple[str, int], str] = {}
    for broker in brokers:
        ports = broker.ports.all()
        if len(set(ports)) != len(ports):
            raise ValueError(f"broker {broker.name!r} uses one port twice: {ports}")
        for port in ports:
            other = seen.get((broker.host, port))
            if other is not None:
                raise ValueError(
                    f"port clash: brokers {other!r} and {broker.name!r} both use "
                    f"{broker.host}:{port}"
                )
            seen[(broker.host, port)] = broker.name


def _check_cycles(links: list[Link]) -> None:
    """Reject a directed cycle whose TTL lets a message travel back to where it started.

    A TTL one below the cycle's length already reaches every broker on it; a longer
    one leaves only ActiveMQ's broker-path check between a message and a loop. That
    check held in a test here (a 3-ring with TTL 3 delivered each message once), but
    a topology should not depend on it.
    """
    graph: dict[str, list[Link]] = {}
    for link in links:
        graph.setdefault(link.source, []).append(link)
        if link.duplex:
            graph.setdefault(link.target, []).append(
                link.model_copy(update={"source": link.target, "target": link.source})
            )

    def walk(start: str, node: str, path: list[Link]) -> None:
        for link in graph.get(node, []):
            if path and link.target == path[-1].source and link.duplex:
                continue  # going back over the same duplex link is not a cycle
            if link.target == start:
                cycle = [*path, link]
                ttl = min(x.ttl for x in cycle)
                if ttl >= len(cycle):
                    route = " -> ".join([x.source for x in cycle] + [start])
                    raise ValueError(
                        f"link cycle {route} with TTL {ttl} would loop messages back to "
                        f"their origin; a ttl of {len(cycle) - 1} already reaches every broker "
                        "on it: lower the links' ttl or break the cycle"
                    )
                continue
            if any(x.source == link.target for x in path) or len(path) > 32:
                continue
            walk(start, link.target, [*path, link])

    for start in graph:
        walk(start, start, [])


def _reachable(links: list[Link], brokers: list[str], destination: str) -> set[tuple[str, str]]:
    """Broker pairs joined by a route a message on ``destination`` may take.

    A route counts when every link on it forwards the destination and it is no longer
    than the smallest TTL on it (a message's hop count is checked at each bridge).
    """
    edges: dict[str, list[tuple[str, int]]] = {}
    for link in links:
        if not any(destination_matches(p, destination) for p in link.destinations):
            continue
        edges.setdefault(link.source, []).append((link.target, link.ttl))
        if link.duplex:
            edges.setdefault(link.target, []).append((link.source, link.ttl))
    out: set[tuple[str, str]] = set()

    def walk(route: list[str], ttl: int) -> None:
        for nxt, link_ttl in edges.get(route[-1], []):
            limit = min(ttl, link_ttl)
            if nxt in route or len(route) > limit:
                continue
            out.add((route[0], nxt))
            walk([*route, nxt], limit)

    for broker in brokers:
        walk([broker], 32)
    return out


def parse_topology(data: object, *, source: str = "<topology>") -> Topology:
    """Validate already-loaded YAML data; errors name the source and the field."""
    try:
        return Topology.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"{where}: {msg}")
        raise NetworkError(f"{source}: invalid topology: " + "; ".join(lines)) from None


def load_topology(path: Path) -> Topology:
    """Read and validate a topology YAML file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise NetworkError(f"cannot read topology {path}: {exc.strerror}; check the path") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise NetworkError(f"{path}: not valid YAML: {exc}; fix the syntax") from None
    topo = parse_topology(data, source=str(path))
    base = path.parent
    # Relative TLS and data paths are relative to the topology file, not the cwd.
    if topo.tls is not None:
        topo = topo.model_copy(update={"tls": topo.tls.relative_to(base)})
    brokers = [
        b.model_copy(update={"data_dir": base / b.data_dir}) if b.data_dir else b
        for b in topo.brokers
    ]
    state_dir = base / topo.state_dir if topo.state_dir else None
    return topo.model_copy(update={"brokers": brokers, "state_dir": state_dir})
