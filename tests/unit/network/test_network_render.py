"""activemq.xml rendering: parse what is produced and check the semantics asked for."""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from msgbus.config import ControlConfig
from msgbus.network.render import VIRTUAL_CONSUMER_QUEUES, VIRTUAL_TOPICS, render_broker
from msgbus.network.topology import load_topology, parse_topology
from msgbus.presence.messages import Destinations
from tests.fixtures.services import require_service

NS = {
    "b": "http://www.springframework.org/schema/beans",
    "a": "http://activemq.apache.org/schema/core",
}
BROKERS = Path(__file__).resolve().parents[3] / "brokers"


def _broker(topology: Any, name: str) -> ET.Element:
    root = ET.fromstring(render_broker(topology, name))
    broker = root.find("a:broker", NS)
    assert broker is not None
    return broker


def _find(el: ET.Element, path: str) -> ET.Element:
    found = el.find(path, NS)
    assert found is not None, path
    return found


def test_connectors_live_on_the_link_source_only() -> None:
    topo = load_topology(BROKERS / "line.yaml")
    a = _broker(topo, "a")
    assert _broker(topo, "c").find("a:networkConnectors", NS) is None  # duplex b->c
    names = [n.get("name") for n in _broker(topo, "b").iter(f"{{{NS['a']}}}networkConnector")]
    assert names == ["b-to-c"]
    [nc] = a.findall("a:networkConnectors/a:networkConnector", NS)
    assert nc.get("uri", "").startswith("static:(tcp://127.0.0.1:62636)")
    wanted = {
        "duplex": "true",
        "networkTTL": "2",
        "conduitSubscriptions": "true",
        "syncDurableSubs": "true",
        "userName": "bridge",
    }
    assert {k: nc.get(k) for k in wanted} == wanted
    included = _find(nc, "a:dynamicallyIncludedDestinations")
    # Consumer queues forwarded on demand, the virtual topics themselves never; the
    # control plane always, so `msgbus ctl` reaches components on every broker.
    assert [(x.tag.split("}")[1], x.get("physicalName")) for x in included] == [
        ("topic", ">"),
        ("queue", "grid.>"),
        ("queue", VIRTUAL_CONSUMER_QUEUES),
        ("topic", "msgbus.presence"),
        ("queue", "msgbus.control.>"),
        ("topic", "msgbus.control.>"),
    ]
    # The bridge user may use exactly what the links forward.
    entries = a.findall(
        "a:plugins/a:authorizationPlugin/a:map/a:authorizationMap/a:authorizationEntries/"
        "a:authorizationEntry",
        NS,
    )
    bridged = {(e.get("queue") or e.get("topic")) for e in entries if e.get("read") == "bridges"}
    assert bridged == {
        ">",
        "grid.>",
        VIRTUAL_CONSUMER_QUEUES,
        "msgbus.presence",
        "msgbus.control.>",
    }
    excluded = _find(nc, "a:excludedDestinations")
    assert [(x.tag.split("}")[1], x.get("physicalName")) for x in excluded] == [
        ("topic", VIRTUAL_TOPICS)
    ]


def test_secure_by_default_auth_and_loopback() -> None:
    topo = load_topology(BROKERS / "single.yaml")
    broker = _broker(topo, "central")
    auth = _find(broker, "a:plugins/a:simpleAuthenticationPlugin")
    assert auth.get("anonymousAccessAllowed") == "false"
    users = {
        u.get("username"): u.get("groups") for u in auth.iter(f"{{{NS['a']}}}authenticationUser")
    }
    assert users == {"admin": "admins", "probe": "publishers", "store": "consumers"}
    entries = broker.findall(
        "a:plugins/a:authorizationPlugin/a:map/a:authorizationMap/a:authorizationEntries/"
        "a:authorizationEntry",
        NS,
    )
    grid_topic = next(e for e in entries if e.get("topic") == "grid.>")
    assert grid_topic.get("write") == "admins,publishers"
    uris = [t.attrib["uri"] for t in broker.iter(f"{{{NS['a']}}}transportConnector")]
    # NIO: idle sockets cost no thread each (10,000 of them, see tests/hostile).
    assert [u.split("?")[0] for u in uris] == [
        "tcp://127.0.0.1:62616",
        "stomp+nio://127.0.0.1:62613",
    ]
    # ActiveMQ's own DoS bounds, which it leaves off by default.
    stomp = {k: v for k, v in (p.split("=") for p in uris[1].split("?")[1].split("&"))}
    assert stomp == {
        "maximumConnections": "16384",
        "wireFormat.maxFrameSize": str(4 << 20),
        "wireFormat.maxDataLength": str(4 << 20),
        "transport.connectAttemptTimeout": "10000",
    }
    kahadb = _find(broker, "a:persistenceAdapter/a:kahaDB")
    assert kahadb.get("journalDiskSyncStrategy") == "always"
    assert kahadb.get("checksumJournalFiles") == "true"
    assert kahadb.get("checkForCorruptJournalFiles") is None  # refuses to start after kill -9
    assert broker.get("useJmx") == "false"
    mgmt = _find(broker, "a:managementContext/a:managementContext")
    assert mgmt.get("createConnector") == "false"
    assert _find(broker, "a:plugins/a:statisticsBrokerPlugin") is not None


def test_policies_dlq_expiry_and_precreated_consumer_queues() -> None:
    topo = load_topology(BROKERS / "single.yaml")
    broker = _broker(topo, "central")
    entries = broker.findall("a:destinationPolicy/a:policyMap/a:policyEntries/a:policyEntry", NS)
    grid = next(e for e in entries if e.get("queue") == "grid.>")
    assert grid.get("memoryLimit") == "64 mb"
    assert grid.get("expireMessagesPeriod") == "30000"
    dlq = _find(grid, "a:deadLetterStrategy/a:individualDeadLetterStrategy")
    assert dlq.get("queuePrefix") == "DLQ."
    queues = [q.get("physicalName") for q in broker.findall("a:destinations/a:queue", NS)]
    assert queues == ["Consumer.store.VirtualTopic.grid.metrics"]
    stamp = _find(broker, "a:plugins/a:timeStampingBrokerPlugin")
    assert stamp.get("zeroExpirationOverride") == "604800000"


def test_children_in_schema_order_and_stomp_ssl() -> None:
    topo = load_topology(BROKERS / "failover-pair.yaml")
    broker = _broker(topo, "site1")
    tags = [c.tag.split("}")[1] for c in broker]
    assert tags == sorted(tags, key=str.lower)
    ssl = _find(broker, "a:sslContext/a:sslContext")
    assert ssl.get("keyStore") == str(BROKERS / "tls" / "broker.p12")
    uris = [t.attrib["uri"] for t in broker.iter(f"{{{NS['a']}}}transportConnector")]
    [stomp_ssl] = [u for u in uris if u.startswith("stomp+nio+ssl://127.0.0.1:62663?")]
    # A truststore means client certificates are required; the bridges use TLS too.
    assert stomp_ssl.endswith("&needClientAuth=true")
    assert [u for u in uris if u.startswith("ssl://127.0.0.1:62656?")]
    [nc] = broker.findall("a:networkConnectors/a:networkConnector", NS)
    assert nc.get("uri", "").startswith("static:(ssl://127.0.0.1:62666)")


def test_stomp_leaves_nio_only_when_the_topology_says_so() -> None:
    topo = load_topology(BROKERS / "failover-pair.yaml")
    bio = [
        b.model_copy(update={"limits": b.limits.model_copy(update={"stomp_nio": False})})
        for b in topo.brokers
    ]
    topo = topo.model_copy(update={"brokers": bio})
    uris = [
        t.attrib["uri"] for t in _broker(topo, "site1").iter(f"{{{NS['a']}}}transportConnector")
    ]
    assert [u.split(":")[0] for u in uris] == ["ssl", "stomp", "stomp+ssl"]


def test_data_dir_is_a_placeholder_unless_given() -> None:
    base: dict[str, Any] = {
        "security": {"authentication": False},
        "brokers": [{"name": "x", "ports": {"stomp": 1, "openwire": 2}}],
    }
    broker = _broker(parse_topology(base), "x")
    assert broker.get("dataDirectory") == "${activemq.data}"
    base["brokers"][0]["data_dir"] = "/srv/amq"
    broker = _broker(parse_topology(base), "x")
    assert _find(broker, "a:persistenceAdapter/a:kahaDB").get("directory") == "/srv/amq/kahadb"
    assert broker.find("a:plugins/a:simpleAuthenticationPlugin", NS) is None


def test_producer_flow_control_is_asked_for() -> None:
    """The settings the chaos suite's "full queue" row runs ActiveMQ with (its real
    ResourceAllocationException is checked there): unset, ActiveMQ's own defaults."""
    base: dict[str, Any] = {
        "security": {"authentication": False},
        "brokers": [{"name": "x", "ports": {"stomp": 1, "openwire": 2}}],
    }
    broker = _broker(parse_topology(base), "x")
    assert _find(broker, "a:systemUsage/a:systemUsage").get("sendFailIfNoSpaceAfterTimeout") is None
    assert broker.find(".//a:vmQueueCursor", NS) is None
    base["brokers"][0]["flow_control_wait_ms"] = 2000
    base["destinations"] = [
        {"name": "/queue/small.>", "memory_limit_mb": 1, "cursor": "vm"},
        {"name": "/topic/small.>", "cursor": "vm"},
    ]
    broker = _broker(parse_topology(base), "x")
    usage = _find(broker, "a:systemUsage/a:systemUsage")
    assert usage.get("sendFailIfNoSpaceAfterTimeout") == "2000"
    entries = broker.findall("a:destinationPolicy/a:policyMap/a:policyEntries/a:policyEntry", NS)
    [queue] = [e for e in entries if e.get("queue") == "small.>"]
    [topic] = [e for e in entries if e.get("topic") == "small.>"]
    assert queue.get("memoryLimit") == "1 mb"
    assert _find(queue, "a:pendingQueuePolicy/a:vmQueueCursor") is not None
    assert _find(topic, "a:pendingDurableSubscriberPolicy/a:vmDurableCursor") is not None


def test_consumer_queues_on_every_broker_replay_when_their_consumer_moves() -> None:
    """Store and forward: a message waits in its groups' queues where it was confirmed."""
    topo = load_topology(BROKERS / "line.yaml")
    for name in "abc":
        broker = _broker(topo, name)
        queues = [q.get("physicalName") for q in broker.findall("a:destinations/a:queue", NS)]
        assert queues == ["Consumer.store.VirtualTopic.grid.metrics"], name
        [entry] = [
            e
            for e in broker.iter(f"{{{NS['a']}}}policyEntry")
            if e.get("queue") == VIRTUAL_CONSUMER_QUEUES
        ]
        assert entry.get("enableAudit") == "false"
        factory = "a:networkBridgeFilterFactory/a:conditionalNetworkBridgeFilterFactory"
        replay = _find(entry, factory)
        assert replay.get("replayWhenNoConsumers") == "true"


def test_parallel_links_get_distinct_connector_names() -> None:
    topo = parse_topology(
        {
            "security": {"authentication": False},
            "brokers": [
                {"name": n, "ports": {"stomp": p, "openwire": p + 1}}
                for n, p in (("a", 1000), ("b", 2000))
            ],
            "links": [
                {"from": "a", "to": "b", "destinations": ["/topic/grid.>"]},
                {"from": "a", "to": "b", "destinations": ["/queue/grid.>"]},
            ],
        }
    )
    names = [n.get("name") for n in _broker(topo, "a").iter(f"{{{NS['a']}}}networkConnector")]
    assert names == ["a-to-b", "a-to-b-2"]


def test_every_user_may_use_the_control_plane_msgbus_components_use() -> None:
    """A component that cannot subscribe to its control queue reconnected in a loop;
    the destinations come from msgbus.presence itself, not retyped."""
    topo = load_topology(BROKERS / "single.yaml")
    control = ControlConfig()
    dests = Destinations(control.prefix)
    used = [
        dests.queue("consumer@host:1"),
        dests.kind("consumer"),
        dests.site("SITE"),
        dests.everyone(),
        control.presence_topic,
    ]
    entries = [
        e
        for e in _broker(topo, "central").iter(f"{{{NS['a']}}}authorizationEntry")
        if e.get("read") and e.get("write")
    ]
    groups = {g for u in topo.users for g in u.groups}
    for dest in used:
        kind, name = dest.split("/")[1:3]

        def covers(entry: Any, kind: str = kind, name: str = name) -> bool:
            pattern = entry.get(kind)
            return pattern is not None and (
                pattern == name or (pattern.endswith(">") and name.startswith(pattern[:-1]))
            )

        [entry] = [e for e in entries if covers(e)][:1]
        for right in ("read", "write", "admin"):
            assert groups <= set(entry.attrib[right].split(",")), (dest, right)


@pytest.mark.parametrize("path", sorted(BROKERS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_topology_renders_well_formed_xml_with_limits(
    path: Path, tmp_path: Path
) -> None:
    require_service("xmllint (libxml2-utils)", lambda: shutil.which("xmllint"))
    topo = load_topology(path)
    for broker in topo.brokers:
        out = tmp_path / f"{broker.name}.xml"
        out.write_text(render_broker(topo, broker.name))
        done = subprocess.run(
            ["xmllint", "--noout", str(out)], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
        text = out.read_text()
        assert "wireFormat.maxFrameSize=" in text and "maximumConnections=" in text
