"""RabbitMQ rendering of a topology: ``rabbitmq.conf`` per node and one definitions file.

The same ``users``/``permissions`` words as ActiveMQ map onto RabbitMQ's three regular
expressions per user (configure, write, read; matched against exchange and queue names)
and its topic permissions (matched against routing keys on ``amq.topic``). Through the
STOMP plugin:

* ``/topic/X`` is ``amq.topic`` with routing key ``X``: ``write`` on it becomes write on
  ``amq.topic`` plus a topic-write routing-key regex; ``read`` becomes read on
  ``amq.topic``, a topic-read regex, and configure/write/read on the plugin's own
  ``stomp-subscription-*`` queues a subscription declares and binds.
* ``/queue/X`` is queue ``X`` behind the default exchange, which the plugin declares
  on every SEND and SUBSCRIBE (a declaration needs configure, so ``read``, ``write``
  and ``admin`` all grant configure on ``X``): ``write`` becomes write on
  ``amq.default`` (RabbitMQ checks the exchange, not the queue, so through
  ``/amq/queue/Y``, which declares nothing, a writer of any queue may send to every
  existing queue), ``read`` read on ``X``.
* ActiveMQ wildcards become anchored regexes: ``*`` one name element, ``>`` the rest.

A consumer group is a quorum queue ``Consumer.<group>.VirtualTopic.X`` per virtual
topic, bound to ``amq.topic`` with key ``VirtualTopic.X``, as ActiveMQ names them: a
publisher sends to ``/topic/VirtualTopic.X`` and the group reads
``/amq/queue/Consumer.<group>.VirtualTopic.X``. They are declared by the definitions,
which are imported once the cluster has all its members, so each queue gets a replica
on every node. Dead letters: a policy per queue, following the topology's destination
policy for the virtual topic (``individual``: ``DLQ.<queue>``, ``shared``: ``DLQ``,
``discard``: none), with at-least-once dead-lettering so a dead letter is not lost.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

from msgbus.config import ControlConfig
from msgbus.network.topology import Broker, DestinationPolicy, Topology
from msgbus.permissions import Action, Permission, destination_matches

__all__ = [
    "DELIVERY_LIMIT",
    "VHOST",
    "group_queues",
    "node_name",
    "plugins",
    "render_definitions",
    "render_node_config",
    "wildcard_regex",
]

VHOST = "/"
# Redeliveries before a poison message is dead-lettered instead of looping forever.
DELIVERY_LIMIT = 20
_SUBSCRIPTION_QUEUES = r"stomp-subscription-.*"


def node_name(topology: Topology, broker: Broker) -> str:
    """The Erlang node name: unique per network, so it never meets the system node."""
    host = "localhost" if broker.host in ("127.0.0.1", "::1", "localhost") else broker.host
    return f"msgbus-{topology.name}-{broker.name}@{host}"


def render_node_config(topology: Topology, name: str) -> str:
    """``rabbitmq.conf`` of one node: its listeners, limits and partition handling."""
    broker = topology.broker(name)
    limits = broker.limits
    lines = [
        f"# {node_name(topology, broker)}, rendered by msgbus from topology {topology.name}",
        f"listeners.tcp.1 = 127.0.0.1:{broker.ports.amqp}",
        f"stomp.listeners.tcp.1 = {broker.stomp_bind}:{broker.ports.stomp}",
        f"stomp.default_vhost = {VHOST}",
        f"max_message_size = {limits.max_frame_bytes}",
        f"connection_max = {limits.max_connections}",
        f"handshake_timeout = {limits.login_timeout_ms}",
        # The minority side of a partition stops serving, so a client fails over to the
        # majority rather than writing to a side that will be rolled back.
        "cluster_partition_handling = pause_minority",
        f"disk_free_limit.absolute = {max(50, broker.temp_mb)}MB",
        # The admin user replaces guest at first boot; definitions add the rest.
        f"default_user = {topology.security.admin_user}",
        f"default_pass = {_password(topology, topology.security.admin_user)}",
        "log.console = false",
        "log.file.level = info",
        *_tls_lines(topology, broker),
    ]
    return "\n".join(lines) + "\n"


def plugins(topology: Topology) -> list[str]:
    """The plugins a node enables: STOMP, and X.509 logins when the topology asks."""
    cert_login = topology.tls is not None and topology.tls.cert_login
    return ["rabbitmq_stomp", *(["rabbitmq_auth_mechanism_ssl"] if cert_login else [])]


def _tls_lines(topology: Topology, broker: Broker) -> list[str]:
    tls = topology.tls
    if tls is None or broker.ports.stomp_ssl is None:
        return []
    lines = [
        f"stomp.listeners.ssl.1 = {broker.stomp_bind}:{broker.ports.stomp_ssl}",
        f"ssl_options.certfile = {tls.cert_file}",
        f"ssl_options.keyfile = {tls.key_file}",
        *([f"ssl_options.cacertfile = {tls.ca_file}"] if tls.ca_file else []),
        f"ssl_options.verify = {'verify_peer' if tls.client_auth else 'verify_none'}",
        f"ssl_options.fail_if_no_peer_cert = {str(tls.client_auth).lower()}",
    ]
    if tls.cert_login:
        # The certificate's CN is the STOMP login of a CONNECT that gives none; a
        # CONNECT with login and passcode still logs in by password.
        lines += [
            "stomp.ssl_cert_login = true",
            "ssl_cert_login_from = common_name",
            "auth_mechanisms.1 = PLAIN",
            "auth_mechanisms.2 = AMQPLAIN",
            "auth_mechanisms.3 = EXTERNAL",
        ]
    return lines


def render_definitions(topology: Topology) -> dict[str, Any]:
    """The definitions (``rabbitmqctl import_definitions``) shared by every node."""
    queues = group_queues(topology)
    dead_letters = sorted({dlq for dlq in (_dead_letter(topology, q) for q in queues) if dlq})
    return {
        "users": [
            {
                "name": user.name,
                "password_hash": password_hash(user.name, user.password),
                "hashing_algorithm": "rabbit_password_hashing_sha256",
                "tags": ["administrator"] if user.name == topology.security.admin_user else [],
            }
            for user in topology.users
        ],
        "vhosts": [{"name": VHOST}],
        "permissions": [
            {"user": user.name, "vhost": VHOST, **_user_permissions(topology, user.member_of())}
            for user in topology.users
        ],
        "topic_permissions": [
            {"user": user.name, "vhost": VHOST, "exchange": "amq.topic", **topic}
            for user in topology.users
            if (topic := _topic_permissions(topology, user.member_of())) is not None
        ],
        "queues": [_quorum_queue(q) for q in [*queues, *dead_letters]],
        "bindings": [
            {
                "source": "amq.topic",
                "vhost": VHOST,
                "destination": queue,
                "destination_type": "queue",
                "routing_key": topic,
                "arguments": {},
            }
            for queue, topic in queues.items()
        ],
        "policies": [_policy(topology, queue) for queue in queues],
        "exchanges": [],
    }


def group_queues(topology: Topology) -> dict[str, str]:
    """Each consumer group's quorum queue per virtual topic, with the key it is bound to."""
    return {
        f"Consumer.{group.name}.VirtualTopic.{topic}": f"VirtualTopic.{topic}"
        for group in topology.consumer_groups
        for topic in topology.virtual_topics
    }


def wildcard_regex(name: str) -> str:
    """An anchored regex for an ActiveMQ wildcard name (``*`` one element, ``>`` the rest)."""
    parts = name.split(".")
    out = ""
    for i, part in enumerate(parts):
        if part == ">":
            # "a.>" matches "a" too, as destination_matches has it.
            return f"^{out}(\\..*)?$" if i else "^.*$"
        element = "[^.]+" if part == "*" else re.escape(part)
        out = f"{out}\\.{element}" if i else element
    return f"^{out}$"


def password_hash(name: str, password: str) -> str:
    """RabbitMQ's salted SHA-256 hash; the salt comes from the name and password so a
    re-render is identical (plan compares rendered files)."""
    salt = hashlib.sha256(f"msgbus:{name}:{password}".encode()).digest()[:4]
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def _password(topology: Topology, name: str) -> str:
    return next(u.password for u in topology.users if u.name == name)


def _patterns(topology: Topology, groups: frozenset[str], kind: str, action: Action) -> list[str]:
    # msgbus's presence and control destinations: every component needs them (as the
    # ActiveMQ renderer grants them to everyone).
    control = [
        Permission(destination=d, read=sorted(groups), write=sorted(groups), admin=sorted(groups))
        for d in ControlConfig().destinations()
    ]
    perms: list[Permission] = [*topology.permissions, *control]
    return [
        wildcard_regex(p.destination.split("/", 2)[2])
        for p in perms
        if p.destination.startswith(f"/{kind}/") and groups & set(p.groups(action))
    ]


def _either(regexes: list[str]) -> str:
    """One regex matching any of ``regexes``; RabbitMQ's ``^$`` matches nothing usable."""
    unique = list(dict.fromkeys(regexes))
    return "|".join(f"(?:{r})" for r in unique) if unique else "^$"


def _user_permissions(topology: Topology, groups: frozenset[str]) -> dict[str, str]:
    queue_read = _patterns(topology, groups, "queue", "read")
    queue_admin = _patterns(topology, groups, "queue", "admin")
    topic_read = bool(_patterns(topology, groups, "topic", "read"))
    topic_write = bool(_patterns(topology, groups, "topic", "write"))
    queue_write = _patterns(topology, groups, "queue", "write")
    subs = [f"^{_SUBSCRIPTION_QUEUES}$"] if topic_read else []
    configure = [*queue_read, *queue_write, *queue_admin, *subs]
    write = [*subs, *(["^amq\\.default$"] if queue_write else [])]
    write += ["^amq\\.topic$"] if topic_write else []
    read = [*queue_read, *subs, *(["^amq\\.topic$"] if topic_read else [])]
    return {"configure": _either(configure), "write": _either(write), "read": _either(read)}


def _topic_permissions(topology: Topology, groups: frozenset[str]) -> dict[str, str] | None:
    write = _patterns(topology, groups, "topic", "write")
    read = _patterns(topology, groups, "topic", "read")
    if not write and not read:
        return None
    return {"write": _either(write), "read": _either(read)}


def _destination_policy(topology: Topology, queue: str) -> DestinationPolicy:
    """The topology's policy for a consumer-group queue (or its virtual topic)."""
    topic = queue.split(".", 2)[2]  # Consumer.<group>.<VirtualTopic.X>
    return next(
        (
            p
            for p in topology.destinations
            if destination_matches(p.name, f"/topic/{topic}")
            or destination_matches(p.name, f"/queue/{queue}")
        ),
        DestinationPolicy(name=f"/queue/{queue}"),
    )


def _dead_letter(topology: Topology, queue: str) -> str | None:
    """The dead-letter queue of a consumer-group queue, from its virtual topic's policy."""
    mode = _destination_policy(topology, queue).dead_letter
    return None if mode == "discard" else "DLQ" if mode == "shared" else f"DLQ.{queue}"


def _quorum_queue(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "vhost": VHOST,
        "durable": True,
        "auto_delete": False,
        "arguments": {"x-queue-type": "quorum"},
    }


def _policy(topology: Topology, queue: str) -> dict[str, Any]:
    policy = _destination_policy(topology, queue)
    dead_letter = _dead_letter(topology, queue)
    definition: dict[str, Any] = {"delivery-limit": policy.delivery_limit or DELIVERY_LIMIT}
    if policy.max_length is not None:
        definition["max-length"] = policy.max_length
    if dead_letter is not None:
        # At-least-once dead-lettering needs reject-publish overflow (RabbitMQ 3.10+).
        definition |= {
            "dead-letter-exchange": "",
            "dead-letter-routing-key": dead_letter,
            "dead-letter-strategy": "at-least-once",
        }
    if dead_letter is not None or policy.max_length is not None:
        # A full queue refuses (the publisher's receipt fails) rather than drop the oldest.
        definition["overflow"] = "reject-publish"
    return {
        "vhost": VHOST,
        "name": f"msgbus-{queue}",
        "pattern": f"^{re.escape(queue)}$",
        "apply-to": "queues",
        "definition": definition,
        "priority": 10,
    }
