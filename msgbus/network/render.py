"""Render one ActiveMQ 5.x ``activemq.xml`` per broker of a topology.

Why the network connectors look the way they do:

* ``conduitSubscriptions`` folds many consumers behind a bridge into one demand, so a
  message crosses a link once, not once per remote consumer.
* ``networkTTL`` bounds how many bridges a message (and a consumer's demand) may
  cross; the topology validator rejects cycles the TTL would let messages go round.
* ``syncDurableSubs`` with ``dynamicallyIncludedDestinations`` makes a bridge that
  (re)connects recreate demand for durable subscribers that subscribed while it was
  down; without both, messages for them stop at the publishing broker.
* Virtual topics are stored and forwarded: every broker holds every group's consumer
  queue (``Consumer.G.VirtualTopic.T``), so a message is fanned out into persistent
  queues at the broker that confirmed it, whatever the state of the network. The bridges
  forward those queues on demand (a group's consumers anywhere pull them across, over
  ``networkTTL`` hops) and never the virtual topics themselves, which would deliver each
  message twice. While a path is down the messages wait in the queue where they were
  published, and flow once it is back. Messages already forwarded towards a consumer
  that then left are replayed back when it reappears elsewhere
  (``conditionalNetworkBridgeFilterFactory`` with ``replayWhenNoConsumers``, and no
  duplicate audit on those queues, as ActiveMQ's documentation requires for that).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from msgbus.config import ControlConfig
from msgbus.errors import NetworkError
from msgbus.network.topology import Broker, DestinationPolicy, Link, Topology

__all__ = ["VIRTUAL_CONSUMER_QUEUES", "VIRTUAL_TOPICS", "render_broker", "split_destination"]

VIRTUAL_CONSUMER_QUEUES = "Consumer.*.VirtualTopic.>"
VIRTUAL_TOPICS = "VirtualTopic.>"

_PLACEHOLDERS = "org.springframework.beans.factory.config.PropertyPlaceholderConfigurer"
_BEANS_NS = "http://www.springframework.org/schema/beans"
_AMQ_NS = "http://activemq.apache.org/schema/core"
_SCHEMAS = (
    f"{_BEANS_NS} http://www.springframework.org/schema/beans/spring-beans.xsd "
    f"{_AMQ_NS} http://activemq.apache.org/schema/core/activemq-core.xsd"
)


def split_destination(dest: str) -> tuple[str, str]:
    """``/queue/a.b`` -> ``("queue", "a.b")``."""
    _, kind, name = dest.split("/", 2)
    return kind, name


def _sub(parent: ET.Element, tag: str, **attrs: str | int | bool | None) -> ET.Element:
    clean = {
        k.rstrip("_"): (str(v).lower() if isinstance(v, bool) else str(v))
        for k, v in attrs.items()
        if v is not None
    }
    return ET.SubElement(parent, tag, clean)


def render_broker(topology: Topology, name: str) -> str:
    """The activemq.xml text for broker ``name``.

    Data goes to the broker's ``data_dir`` when the topology names one, else to
    ``${activemq.data}``, which whoever starts the broker sets.
    """
    broker = topology.broker(name)
    data_dir = str(broker.data_dir) if broker.data_dir else "${activemq.data}"
    beans = ET.Element(
        "beans",
        {
            "xmlns": _BEANS_NS,
            "xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance",
            "xsi:schemaLocation": _SCHEMAS,
        },
    )
    # Lets ${activemq.data} and friends be filled from the JVM's system properties.
    _sub(beans, "bean", class_=_PLACEHOLDERS)
    root = _sub(
        beans,
        "broker",
        xmlns=_AMQ_NS,
        brokerName=broker.name,
        dataDirectory=data_dir,
        # No JMX: nothing here reads it, and no remote management port is opened.
        useJmx=False,
        schedulerSupport=False,
        persistent=True,
        useVirtualDestSubs=True,
        useVirtualDestSubsOnCreation=True,
        # How often inactive destinations (idle control reply queues) are collected.
        schedulePeriodForDestinationPurge=30_000,
    )
    # Children in alphabetical order: ActiveMQ's schema has required that since 5.4.
    _destination_policy(root, topology.destinations)
    _precreated(root, topology)
    mgmt = _sub(root, "managementContext")
    _sub(mgmt, "managementContext", createConnector=False)
    links = [link for link in topology.links if link.source == broker.name]
    if links:
        connectors = _sub(root, "networkConnectors")
        for i, link in enumerate(links):
            # Connector names must be unique per broker; parallel links get a suffix.
            twins = [x for x in links[:i] if x.target == link.target]
            name = f"{link.source}-to-{link.target}" + (f"-{len(twins) + 1}" if twins else "")
            _network_connector(connectors, topology, link, name)
    persistence = _sub(root, "persistenceAdapter")
    # Said explicitly, not left to the version's defaults: a confirmed message is on
    # disk (fsync per write), and a torn journal tail is detected by its checksums and
    # written over, not replayed. Not checkForCorruptJournalFiles: it refuses to start
    # on any corrupt block, even the unconfirmed tail a kill -9 leaves that no message
    # references (KahaDB's MessageDatabase.recoverIndex; seen in CI).
    _sub(
        persistence,
        "kahaDB",
        directory=f"{data_dir}/kahadb",
        journalDiskSyncStrategy="always",
        checksumJournalFiles=True,
    )
    _plugins(root, topology, broker)
    if topology.tls is not None:  # STOMP+SSL and the bridges use it
        tls = topology.tls
        ssl = _sub(root, "sslContext")
        _sub(
            ssl,
            "sslContext",
            keyStore=str(tls.keystore),
            keyStorePassword=tls.keystore_password,
            trustStore=str(tls.truststore) if tls.truststore else None,
            trustStorePassword=tls.truststore_password,
        )
    _system_usage(root, broker)
    _transports(root, topology, broker)
    ET.indent(beans)
    return ET.tostring(beans, encoding="unicode") + "\n"


def _destination_policy(root: ET.Element, policies: list[DestinationPolicy]) -> None:
    # Catch-all entries first give every destination the individual DLQ by default;
    # the topology may override them.
    given = {p.name: p for p in policies}
    entries = [given.pop(n, DestinationPolicy(name=n)) for n in ("/queue/>", "/topic/>")]
    consumer_queues = f"/queue/{VIRTUAL_CONSUMER_QUEUES}"
    entries.append(
        given.pop(consumer_queues, entries[0].model_copy(update={"name": consumer_queues}))
    )
    entries += given.values()
    replies = f"/queue/{ControlConfig().prefix}.reply.>"
    dp = _sub(root, "destinationPolicy")
    pm = _sub(dp, "policyMap")
    pe = _sub(pm, "policyEntries")
    for policy in entries:
        kind, name = split_destination(policy.name)
        entry = _sub(
            pe,
            "policyEntry",
            **{kind: name},
            memoryLimit=f"{policy.memory_limit_mb} mb" if policy.memory_limit_mb else None,
            expireMessagesPeriod=policy.expire_check_ms,
        )
        if policy.cursor == "vm":
            pending = "pendingQueuePolicy" if kind == "queue" else "pendingDurableSubscriberPolicy"
            cursor = "vmQueueCursor" if kind == "queue" else "vmDurableCursor"
            _sub(_sub(entry, pending), cursor)
        dls = _sub(entry, "deadLetterStrategy")
        if policy.dead_letter == "individual":
            _sub(
                dls,
                "individualDeadLetterStrategy",
                queuePrefix="DLQ.",
                topicPrefix="DLQ.",
                useQueueForQueueMessages=True,
                useQueueForTopicMessages=True,
                processNonPersistent=policy.dead_letter_non_persistent,
            )
        elif policy.dead_letter == "shared":
            _sub(
                dls,
                "sharedDeadLetterStrategy",
                processNonPersistent=policy.dead_letter_non_persistent,
            )
        else:
            _sub(dls, "discarding")
        if policy.name == consumer_queues:
            entry.set("enableAudit", "false")
            nbf = _sub(entry, "networkBridgeFilterFactory")
            _sub(nbf, "conditionalNetworkBridgeFilterFactory", replayWhenNoConsumers=True)
    # `msgbus ctl` replies come back on a queue of the requester's (forwarded like the
    # other control queues); an idle one is deleted after a minute.
    _sub(
        pe,
        "policyEntry",
        queue=split_destination(replies)[1],
        gcInactiveDestinations=True,
        inactiveTimoutBeforeGC=60_000,
    )


def _precreated(root: ET.Element, topology: Topology) -> None:
    # On every broker: where a message is confirmed, it waits for its groups.
    queues = [
        f"Consumer.{group.name}.VirtualTopic.{topic}"
        for topic in topology.virtual_topics
        for group in topology.consumer_groups
    ]
    if not queues:
        return
    dests = _sub(root, "destinations")
    for queue in queues:
        _sub(dests, "queue", physicalName=queue)


def _network_connector(parent: ET.Element, topology: Topology, link: Link, name: str) -> None:
    target = topology.broker(link.target)
    user = _bridge_user(topology)
    nc = _sub(
        parent,
        "networkConnector",
        name=name,
        # Retry a missing peer every 1-5 s rather than backing off to 30 s: a network
        # should form within seconds of its last broker starting.
        uri=f"static:({'ssl' if topology.tls else 'tcp'}://{target.host}:{target.ports.openwire})"
        "?initialReconnectDelay=1000&maxReconnectDelay=5000&useExponentialBackOff=true",
        duplex=link.duplex,
        networkTTL=link.ttl,
        conduitSubscriptions=link.conduit,
        syncDurableSubs=True,
        useVirtualDestSubs=True,
        decreaseNetworkConsumerPriority=True,
        suppressDuplicateQueueSubscriptions=True,
        userName=user[0] if user else None,
        password=user[1] if user else None,
    )
    included = _sub(nc, "dynamicallyIncludedDestinations")
    for kind, name in _bridged(link):
        _sub(included, kind, physicalName=name)
    excluded = _sub(nc, "excludedDestinations")
    _sub(excluded, "topic", physicalName=VIRTUAL_TOPICS)


def _bridge_user(topology: Topology) -> tuple[str, str] | None:
    if not topology.security.authentication:
        return None
    name = topology.security.bridge_user
    for user in topology.users:
        if user.name == name:
            return user.name, user.password
    raise NetworkError(f"security.bridge_user {name!r} is not among the topology's users")


def _control() -> list[tuple[str, str]]:
    """msgbus's presence and control destinations: every component needs them."""
    return [split_destination(d) for d in ControlConfig().destinations()]


def _bridged(link: Link) -> list[tuple[str, str]]:
    """What a link forwards: its destinations, the virtual-topic consumer queues (store
    and forward) and msgbus's control plane, so `msgbus ctl` reaches every broker."""
    named = [split_destination(dest) for dest in link.destinations]
    return [*named, ("queue", VIRTUAL_CONSUMER_QUEUES), *_control()]


def _plugins(root: ET.Element, topology: Topology, broker: Broker) -> None:
    plugins = _sub(root, "plugins")
    _sub(plugins, "statisticsBrokerPlugin")
    if topology.expiry_ms is not None:
        # Messages sent without an expiry (or a longer one) get the topology's ceiling.
        _sub(
            plugins,
            "timeStampingBrokerPlugin",
            zeroExpirationOverride=topology.expiry_ms,
            ttlCeiling=topology.expiry_ms,
            futureOnly=True,
        )
    if not topology.security.authentication:
        return
    auth = _sub(plugins, "simpleAuthenticationPlugin", anonymousAccessAllowed=False)
    users = _sub(auth, "users")
    for user in topology.users:
        _sub(
            users,
            "authenticationUser",
            username=user.name,
            password=user.password,
            groups=",".join(user.groups) or "users",
        )
    authz = _sub(plugins, "authorizationPlugin")
    amap = _sub(_sub(authz, "map"), "authorizationMap")
    entries = _sub(amap, "authorizationEntries")
    everyone = ",".join(sorted({g for u in topology.users for g in u.groups} | {"users"}))
    for perm in topology.permissions:
        kind, name = split_destination(perm.destination)
        _sub(
            entries,
            "authorizationEntry",
            **{kind: name},
            read=",".join(perm.read) or None,
            write=",".join(perm.write) or None,
            admin=",".join(perm.admin) or None,
        )
    # Every client needs the advisory topics (consumer/producer bookkeeping) and the
    # statistics queues; they carry no grid data. Every msgbus component announces
    # itself and listens for control requests (which it authorizes itself, see
    # msgbus.presence): without these a component's control channel is refused.
    for kind, name in (
        ("topic", "ActiveMQ.Advisory.>"),
        ("queue", "ActiveMQ.Statistics.>"),
        ("topic", "ActiveMQ.Statistics.>"),
        *_control(),
    ):
        _sub(
            entries,
            "authorizationEntry",
            **{kind: name},
            read=everyone,
            write=everyone,
            admin=everyone,
        )
    # The bridge user may use what the links forward, and nothing else (ActiveMQ unions
    # the groups of every entry that matches a destination).
    bridges = {
        entry
        for link in topology.links
        if broker.name in (link.source, link.target)
        for entry in _bridged(link)
    }
    bridge_groups = _bridge_groups(topology)
    for kind, name in sorted(bridges):
        _sub(
            entries,
            "authorizationEntry",
            **{kind: name},
            read=bridge_groups,
            write=bridge_groups,
            admin=bridge_groups,
        )
    temp = _sub(amap, "tempDestinationAuthorizationEntry")
    _sub(temp, "tempDestinationAuthorizationEntry", read=everyone, write=everyone, admin=everyone)


def _bridge_groups(topology: Topology) -> str:
    name = topology.security.bridge_user
    user = next((u for u in topology.users if u.name == name), None)
    return ",".join(sorted(user.member_of())) if user is not None else "users"


def _system_usage(root: ET.Element, broker: Broker) -> None:
    outer = _sub(root, "systemUsage")
    su = _sub(outer, "systemUsage", sendFailIfNoSpaceAfterTimeout=broker.flow_control_wait_ms)
    _sub(_sub(su, "memoryUsage"), "memoryUsage", percentOfJvmHeap=60)
    _sub(_sub(su, "storeUsage"), "storeUsage", limit=f"{broker.store_mb} mb")
    _sub(_sub(su, "tempUsage"), "tempUsage", limit=f"{broker.temp_mb} mb")


def _transports(root: ET.Element, topology: Topology, broker: Broker) -> None:
    tcs = _sub(root, "transportConnectors")
    ports, limits = broker.ports, broker.limits
    # DoS bounds on every connector: ActiveMQ 5.17 takes a STOMP frame of any size
    # (maxFrameSize defaults to Long.MAX_VALUE) and any number of connections. STOMP
    # runs on NIO: the plain transport holds a thread per socket, and 10,000 idle
    # sockets slowed logins past 1 s and then filled the connection cap.
    stomp_limits = (
        f"maximumConnections={limits.max_connections}"
        f"&wireFormat.maxFrameSize={limits.max_frame_bytes}"
        f"&wireFormat.maxDataLength={limits.max_frame_bytes}"
        f"&transport.connectAttemptTimeout={limits.login_timeout_ms}"
    )
    # OpenWire carries the bridges: room for a whole STOMP frame plus the JMS envelope.
    openwire_limits = (
        f"maximumConnections={limits.max_connections}"
        f"&wireFormat.maxFrameSize={2 * limits.max_frame_bytes}"
    )
    stomp = "stomp+nio" if limits.stomp_nio else "stomp"
    tls = topology.tls
    client_auth = f"&needClientAuth={str(tls.client_auth).lower()}" if tls else ""
    # With TLS the bridges (OpenWire) run over it too.
    openwire = f"ssl://{broker.openwire_bind}:{ports.openwire}?{openwire_limits}{client_auth}"
    _sub(
        tcs,
        "transportConnector",
        name="openwire",
        uri=openwire if tls else f"tcp://{broker.openwire_bind}:{ports.openwire}?{openwire_limits}",
    )
    _sub(
        tcs,
        "transportConnector",
        name="stomp",
        uri=f"{stomp}://{broker.stomp_bind}:{ports.stomp}?{stomp_limits}",
    )
    if ports.stomp_ssl is not None:
        _sub(
            tcs,
            "transportConnector",
            name="stomp+ssl",
            uri=f"{stomp}+ssl://{broker.stomp_bind}:{ports.stomp_ssl}?{stomp_limits}{client_auth}",
        )
