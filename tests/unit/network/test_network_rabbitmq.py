"""RabbitMQ rendering: the engine choice, rabbitmq.conf and the definitions' semantics."""

from __future__ import annotations

import base64
import hashlib
import os
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from msgbus.errors import NetworkError
from msgbus.network.rabbitmq import (
    node_name,
    plugins,
    render_definitions,
    render_node_config,
    wildcard_regex,
)
from msgbus.network.rabbitmq_local import RabbitCluster
from msgbus.network.topology import Topology, load_topology, parse_topology
from msgbus.permissions import destination_matches

BROKERS = Path(__file__).resolve().parents[3] / "brokers"


def _rabbit(**extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "t",
        "engine": "rabbitmq",
        "brokers": [
            {"name": f"n{i}", "ports": {"stomp": 7000 + i, "amqp": 7100 + i, "dist": 7200 + i}}
            for i in range(3)
        ],
        "users": [
            {"name": "admin", "password": "a", "groups": ["admins"]},
            {"name": "pub", "password": "p", "groups": ["publishers"]},
            {"name": "sub", "password": "s", "groups": ["consumers"]},
        ],
        "permissions": [
            {"destination": "/topic/grid.>", "read": ["consumers"], "write": ["publishers"]},
            {"destination": "/queue/>", "read": ["admins"], "admin": ["admins"]},
            {"destination": "/queue/in.*", "write": ["publishers"]},
        ],
        "virtual_topics": ["grid.metrics"],
        "consumer_groups": [{"name": "store", "brokers": ["n0", "n1", "n2"]}],
    }
    return data | extra


def _conf(topology: Topology, node: str) -> dict[str, str]:
    """A node's rendered rabbitmq.conf as settings."""
    lines = render_node_config(topology, node).splitlines()
    return dict(line.split(" = ", 1) for line in lines if not line.startswith("#"))


def _user(defs: dict[str, Any], section: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(x for x in defs[section] if x["user"] == name)
    return found


def test_engine_defaults_to_activemq_which_needs_openwire() -> None:
    topo = load_topology(BROKERS / "core3.yaml")
    assert topo.engine == "activemq"
    data = {
        "brokers": [{"name": "a", "ports": {"stomp": 1}}],
        "security": {"authentication": False},
    }
    with pytest.raises(NetworkError, match=r"engine activemq needs ports\.openwire"):
        parse_topology(data)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"links": [{"from": "n0", "to": "n1"}]}, "has no links"),
        ({"brokers": _rabbit()["brokers"][:2]}, "odd number of nodes"),
        ({"security": {"authentication": False}}, "always authenticates"),
        ({"tls": {"cert_file": "c.pem"}}, r"needs tls\.key_file"),
        ({"tls": {"cert_file": "c", "key_file": "k", "keystore": "k.p12"}}, "not read tls.keys"),
        ({"tls": {"cert_file": "c", "key_file": "k", "cert_login": True}}, "tls.ca_file"),
    ],
)
def test_rabbitmq_topology_refusals(change: dict[str, Any], message: str) -> None:
    with pytest.raises(NetworkError, match=message):
        parse_topology(_rabbit(**change))


def test_rabbitmq_needs_amqp_and_dist_ports() -> None:
    data = _rabbit()
    del data["brokers"][1]["ports"]["dist"]
    with pytest.raises(NetworkError, match=r"broker 'n1': engine rabbitmq needs ports\.dist"):
        parse_topology(data)


@given(
    st.lists(st.sampled_from(["a", "b", "*"]), min_size=1, max_size=3),
    st.booleans(),
    st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=4),
)
def test_wildcard_regex_matches_as_the_permission_model_does(
    head: list[str], rest: bool, name: list[str]
) -> None:
    pattern = ".".join([*head, ">"] if rest else head)
    dest = ".".join(name)
    expected = destination_matches(f"/queue/{pattern}", f"/queue/{dest}")
    assert bool(re.search(wildcard_regex(pattern), dest)) is expected


def test_password_hash_is_rabbitmq_salted_sha256() -> None:
    defs = render_definitions(parse_topology(_rabbit()))
    [pub] = [u for u in defs["users"] if u["name"] == "pub"]
    raw = base64.b64decode(pub["password_hash"])
    assert raw[4:] == hashlib.sha256(raw[:4] + b"p").digest()
    assert pub["hashing_algorithm"] == "rabbit_password_hashing_sha256"
    assert [u["tags"] for u in defs["users"]] == [["administrator"], [], []]


def test_permissions_map_onto_configure_write_read() -> None:
    defs = render_definitions(parse_topology(_rabbit()))
    pub, sub = _user(defs, "permissions", "pub"), _user(defs, "permissions", "sub")
    assert re.search(pub["write"], "amq.topic") and re.search(pub["write"], "amq.default")
    assert not re.search(pub["read"], "anything")
    # SEND to /queue/in.x declares in.x: configure on what it may write, nothing more.
    assert re.search(pub["configure"], "in.x") and not re.search(pub["configure"], "out.x")
    # A STOMP topic subscription declares, binds and reads its own queue.
    for action in ("configure", "write", "read"):
        assert re.search(sub[action], "stomp-subscription-abc")
    assert re.search(sub["read"], "amq.topic")
    sub_topic = _user(defs, "topic_permissions", "sub")
    assert not re.search(sub_topic["write"], "grid.metrics")
    topic = _user(defs, "topic_permissions", "pub")
    assert re.search(topic["write"], "grid.metrics") and not re.search(topic["write"], "other")
    # msgbus's own presence and control topics: every user, only those.
    assert re.search(topic["read"], "msgbus.presence") and not re.search(topic["read"], "grid.x")
    assert re.search(pub["configure"], "msgbus.control.consumer_1")
    # The admin reads and creates every queue; only /queue permissions grant that.
    admin = _user(defs, "permissions", "admin")
    assert re.search(admin["configure"], "anything") and not re.search(sub["configure"], "x")


def test_consumer_groups_are_bound_quorum_queues_with_dead_letters() -> None:
    defs = render_definitions(parse_topology(_rabbit()))
    queue = "Consumer.store.VirtualTopic.grid.metrics"
    names = {q["name"]: q["arguments"] for q in defs["queues"]}
    assert names == {
        queue: {"x-queue-type": "quorum"},
        f"DLQ.{queue}": {"x-queue-type": "quorum"},
    }
    [binding] = defs["bindings"]
    assert (binding["source"], binding["destination"], binding["routing_key"]) == (
        "amq.topic",
        queue,
        "VirtualTopic.grid.metrics",
    )
    [policy] = defs["policies"]
    assert re.search(policy["pattern"], queue) and not re.search(policy["pattern"], f"{queue}x")
    assert policy["definition"]["dead-letter-routing-key"] == f"DLQ.{queue}"
    assert policy["definition"]["dead-letter-strategy"] == "at-least-once"


@pytest.mark.parametrize(("mode", "dlq"), [("shared", "DLQ"), ("discard", None)])
def test_dead_letter_modes(mode: str, dlq: str | None) -> None:
    topo = parse_topology(_rabbit(destinations=[{"name": "/topic/>", "dead_letter": mode}]))
    defs = render_definitions(topo)
    [policy] = defs["policies"]
    assert policy["definition"].get("dead-letter-routing-key") == dlq
    assert len(defs["queues"]) == (2 if dlq else 1)


def test_delivery_limit_and_max_length_become_the_queue_policy() -> None:
    policy = {"name": "/topic/VirtualTopic.>", "delivery_limit": 5, "max_length": 1000}
    [rendered] = render_definitions(parse_topology(_rabbit(destinations=[policy])))["policies"]
    assert rendered["definition"]["delivery-limit"] == 5
    assert rendered["definition"]["max-length"] == 1000
    assert rendered["definition"]["overflow"] == "reject-publish"  # refuse, never drop
    activemq = {"brokers": [{"name": "a", "ports": {"stomp": 1, "openwire": 2}}]}
    with pytest.raises(NetworkError, match="for engine rabbitmq only"):
        parse_topology(
            {**activemq, "security": {"authentication": False}, "destinations": [policy]}
        )


def test_node_config_has_its_own_listeners_and_limits() -> None:
    topo: Topology = load_topology(BROKERS / "rabbit3.yaml")
    conf = _conf(topo, "r2")
    assert conf["listeners.tcp.1"] == "127.0.0.1:62825"
    assert conf["stomp.listeners.tcp.1"] == "127.0.0.1:62823"
    assert conf["max_message_size"] == str(4 * 1024 * 1024)
    assert conf["default_user"] == "admin"
    # Chosen, not defaulted (RabbitMQ's default is ignore): see brokers/README.md.
    assert conf["cluster_partition_handling"] == "pause_minority"
    assert node_name(topo, topo.broker("r2")) == "msgbus-rabbit3-r2@localhost"


def test_a_node_may_use_an_epmd_of_its_own(tmp_path: Path) -> None:
    """The fault suite's hook: node and CLI tools look peers up at ERL_EPMD_PORT."""
    topo: Topology = load_topology(BROKERS / "rabbit3.yaml")
    cluster = RabbitCluster(topo, tmp_path, epmd_ports={"r2": 14369})
    assert cluster.process("r2").env()["ERL_EPMD_PORT"] == "14369"
    assert cluster.process("r1").env().get("ERL_EPMD_PORT") == os.environ.get("ERL_EPMD_PORT")


def test_tls_listener_and_certificate_login() -> None:
    brokers = [
        {**b, "ports": {**b["ports"], "stomp_ssl": 7300 + i}}
        for i, b in enumerate(_rabbit()["brokers"])
    ]
    tls = {"cert_file": "/pki/node.pem", "key_file": "/pki/node.key", "ca_file": "/pki/ca.pem"}
    topo = parse_topology(_rabbit(brokers=brokers, tls={**tls, "cert_login": True}))
    conf = _conf(topo, "n1")
    assert conf["stomp.listeners.ssl.1"] == "127.0.0.1:7301"
    assert conf["ssl_options.cacertfile"] == "/pki/ca.pem"
    assert conf["ssl_options.verify"] == "verify_peer"
    assert conf["ssl_options.fail_if_no_peer_cert"] == "true"
    assert conf["stomp.ssl_cert_login"] == "true"
    assert "EXTERNAL" in conf.values()
    assert plugins(topo) == ["rabbitmq_stomp", "rabbitmq_auth_mechanism_ssl"]
    server_only = parse_topology(_rabbit(brokers=brokers, tls={**tls, "need_client_auth": False}))
    conf_text = render_node_config(server_only, "n1")
    assert "ssl_options.verify = verify_none" in conf_text
    assert "ssl_cert_login" not in conf_text
    assert plugins(server_only) == ["rabbitmq_stomp"]
