"""`msgbus network apply` on a running 3-node RabbitMQ cluster while msgbus publishes and
stores a steady stream: a node replaced (the one publisher and consumer are connected to)
and a policy changed, and every confirmed message is stored exactly once. And TLS turned
on by apply (a rolling restart), then msgbus publishing and consuming over it."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from msgbus.cli.network_cmd import network
from msgbus.errors import MsgbusError
from msgbus.network.activemq import free_port
from msgbus.network.rabbitmq import node_name
from msgbus.network.rabbitmq_local import RabbitCluster
from msgbus.network.topology import DestinationPolicy, Ports, Topology
from msgbus.network.topology_tls import Tls
from msgbus.stomp.frames import MessageFrame
from msgbus.transport.connection import Connection
from msgbus.transport.settings import ConnectionConfig, TLSConfig
from msgbus.transport.url import BrokerURL
from tests.chaos.harness import Pipeline, PublishRun, Target
from tests.fixtures.pipeline import wait_until
from tests.fixtures.pki import Pki

QUEUE = "Consumer.store.VirtualTopic.grid.metrics"


def _apply(state_dir: Path, topology: Topology) -> tuple[int, str]:
    path = state_dir.parent / f"apply-{len(topology.brokers)}-{id(topology)}.yaml"
    path.write_text(topology.model_dump_json(by_alias=True), encoding="utf-8")
    result = CliRunner().invoke(network, ["apply", str(path), "--state-dir", str(state_dir)])
    return result.exit_code, result.output + str(result.exception or "")


def _target(topology: Topology, every: list[Ports]) -> Target:
    passwords = {u.name: u.password for u in topology.users}

    def urls(user: str) -> list[str]:
        return [f"stomp://{user}:{passwords[user]}@127.0.0.1:{p.stomp}" for p in every]

    return Target(
        kind="rabbitmq-cluster",
        publish_urls=urls("probe"),
        consume_urls=urls("store"),
        publish_destination="/topic/VirtualTopic.grid.metrics",
        consume_destination=f"/amq/queue/{QUEUE}",
        connection={"vhost": "/"},
        env={"MSGBUS_CONNECTION__VHOST": "/"},
    )


def test_apply_replaces_a_node_and_changes_a_policy_under_load(
    rabbit_cluster: RabbitCluster, postgres_url: str, tmp_path: Path
) -> None:
    topo = rabbit_cluster.topology
    ports = Ports(stomp=free_port(), amqp=free_port(), dist=free_port())
    r4 = topo.brokers[0].model_copy(update={"name": "r4", "ports": ports})
    # r1 goes: the node publisher and consumer are connected to (first in their lists).
    kept = [*topo.brokers[1:], r4]
    group = topo.consumer_groups[0].model_copy(update={"brokers": [b.name for b in kept]})
    moved = topo.model_copy(update={"brokers": kept, "consumer_groups": [group]})
    policy = DestinationPolicy(name="/topic/VirtualTopic.>", delivery_limit=5, max_length=500_000)
    changed = moved.model_copy(update={"destinations": [policy]})
    pipe = Pipeline(
        "apply",
        _target(topo, [b.ports for b in [*topo.brokers, r4]]),
        tmp_path,
        postgres_url,
        postgres_url,
    )
    state = rabbit_cluster.state_dir
    after = RabbitCluster(changed, state)
    runs: list[PublishRun] = []
    stop = threading.Event()

    def publish() -> None:
        while not stop.is_set():
            runs.append(pipe.publish(100))

    publishing = threading.Thread(target=publish)
    try:
        pipe.start_consumer()
        publishing.start()
        wait_until(lambda: pipe.stored_count() >= 100, 60, "the first rows")
        code, out = _apply(state, moved)
        assert code == 0, out
        assert "add node r4" in out and "remove node r1" in out, out
        code, out = _apply(state, changed)
        assert code == 0, out
        assert f"policy msgbus-{QUEUE}: delivery-limit 20 -> 5, max-length - -> 500000" in out
        # Some publishing after both changes, onto the new member set.
        published = len(runs)
        wait_until(lambda: len(runs) >= published + 2, 120, "publishing after apply")
        stop.set()
        publishing.join(180)
        assert not publishing.is_alive(), "msgbus publish hung"
        assert all(r.returncode == 0 and r.failed == 0 for r in runs), [r.output for r in runs]
        code, out = _apply(state, changed)
        assert (code, out.strip()) == (0, "nothing to change"), out
        assert after.check() == []
        seed = after.process("r4")
        wanted = sorted(node_name(changed, b) for b in changed.brokers)
        assert after.queue_members(seed)[QUEUE] == wanted
        assert after.members(seed, "disk_nodes") == wanted
        policies = json.loads(seed.ctl(after.bin_dir, "list_policies", "--formatter", "json"))
        live = next(p for p in policies if p["name"] == f"msgbus-{QUEUE}")
        definition = live["definition"]
        definition = json.loads(definition) if isinstance(definition, str) else definition
        assert (definition["delivery-limit"], definition["max-length"]) == (5, 500_000)
        pipe.settle()
        row = pipe.verify()
        assert row.confirmed == 100 * len(runs) and row.lost == row.duplicate_rows == 0
    finally:
        stop.set()
        if publishing.is_alive():
            publishing.join(180)
        for consumer in pipe.consumers:
            consumer.kill()
        after.process("r4").kill()


def _tls_connection(port: int, cert: Path, key: Path, ca: Path, login: str = "") -> Connection:
    url = BrokerURL.model_validate(f"stomp+ssl://{login}127.0.0.1:{port}")
    tls = TLSConfig(cert=cert, key=key, ca_file=ca)
    conn = Connection(url, ConnectionConfig(brokers=[url], vhost="/", tls=tls))
    conn.connect()
    return conn


def test_apply_turns_tls_on_and_msgbus_uses_it(rabbit_cluster: RabbitCluster, pki: Pki) -> None:
    topo = rabbit_cluster.topology
    brokers = [
        b.model_copy(update={"ports": b.ports.model_copy(update={"stomp_ssl": free_port()})})
        for b in topo.brokers
    ]
    tls = Tls(cert_file=pki.server_cert, key_file=pki.server_key, ca_file=pki.ca, cert_login=True)
    code, out = _apply(
        rabbit_cluster.state_dir, topo.model_copy(update={"brokers": brokers, "tls": tls})
    )
    assert code == 0, out
    assert out.count("stomp.listeners.ssl.1") == 2 * len(brokers), out  # planned and done
    first, last = (b.ports.stomp_ssl for b in (brokers[0], brokers[-1]))
    assert first is not None and last is not None
    # The publisher logs in by its certificate (CN=probe), no passcode.
    pub = _tls_connection(first, pki.client_cert, pki.client_key, pki.ca)
    body = b"over TLS, confirmed by a quorum"
    pub.send("/topic/VirtualTopic.grid.metrics", body, {"persistent": "true"}, receipt="r")
    pub.wait_for_receipt("r", 30)
    node = rabbit_cluster.process(brokers[0].name)
    columns = ("auth_login", "auth_mechanism", "ssl")
    listed = node.ctl(rabbit_cluster.bin_dir, "-q", "list_stomp_connections", *columns)
    assert "probe\tssl\ttrue" in listed.splitlines(), listed  # logged in by its certificate
    pub.disconnect()
    password = next(u.password for u in topo.users if u.name == "store")
    sub = _tls_connection(last, pki.client_cert, pki.client_key, pki.ca, f"store:{password}@")
    sub.subscribe(f"/amq/queue/{QUEUE}", id="s", ack="client-individual")
    frame = sub.receive(30)
    assert isinstance(frame, MessageFrame) and frame.body == body
    sub.ack([frame])
    sub.disconnect()
    with pytest.raises(MsgbusError):
        _tls_connection(first, pki.stranger_cert, pki.stranger_key, pki.ca)
