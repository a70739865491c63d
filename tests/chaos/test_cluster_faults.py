"""The replicated RabbitMQ cluster (brokers/rabbit3.yaml, engine rabbitmq) under faults.

The consumer group's queue is a quorum queue with a replica on each of three nodes:
RabbitMQ confirms a message (the STOMP receipt) only once a majority holds it. Publisher
and consumer list all three nodes and fail over between them. Every message a node
confirmed must be stored exactly once, whichever node dies or is cut off. The long run
(a 60-s partition, twenty times the messages): ``MSGBUS_PARTITION_SECONDS=60
MSGBUS_CHAOS_SCALE=20 pytest -m chaos tests/chaos/test_cluster_faults.py``.

Not to be run beside tests/chaos/test_pipeline_faults.py's rabbitmq rows, whose
"kill the broker" kills every beam.smp on the machine, these nodes too.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from msgbus.errors import NetworkError
from msgbus.network.activemq import stomp_answers
from msgbus.network.rabbitmq_local import RabbitCluster
from tests.chaos.harness import Pipeline, Target, pipeline_for
from tests.fixtures.chaos import ChaosRow
from tests.fixtures.dist_proxy import Partition
from tests.fixtures.pipeline import wait_until
from tests.fixtures.proxy import TcpProxy

pytestmark = [pytest.mark.chaos, pytest.mark.postgres, pytest.mark.rabbitmq]

SCALE = int(os.environ.get("MSGBUS_CHAOS_SCALE", "1"))
CHUNK = 200 * SCALE
PARTITION_SECONDS = float(os.environ.get("MSGBUS_PARTITION_SECONDS", "15"))


def _target(cluster: RabbitCluster) -> Target:
    topo = cluster.topology
    passwords = {u.name: u.password for u in topo.users}

    def urls(user: str) -> list[str]:
        return [f"stomp://{user}:{passwords[user]}@127.0.0.1:{b.ports.stomp}" for b in topo.brokers]

    first = cluster.process(topo.brokers[0].name)
    return Target(
        kind="rabbitmq-cluster",
        publish_urls=urls("probe"),
        consume_urls=urls("store"),
        publish_destination="/topic/VirtualTopic.grid.metrics",
        consume_destination="/amq/queue/Consumer.store.VirtualTopic.grid.metrics",
        connection={"vhost": "/"},
        # The publisher's default mode: it confirms per SEND on RabbitMQ by itself
        # (msgbus.publish.pipeline.confirm_mode).
        env={"MSGBUS_CONNECTION__VHOST": "/"},
        kill_broker=first.kill,
        restart_broker=lambda: cluster.up([first.broker.name]),
        publishes_through_faults=True,
    )


@pytest.fixture
def cluster(rabbit_partition: tuple[RabbitCluster, Partition]) -> RabbitCluster:
    """The module's cluster (its partition links untouched)."""
    return rabbit_partition[0]


@pytest.fixture
def cluster_pipeline(
    request: pytest.FixtureRequest,
    cluster: RabbitCluster,
    postgres_url: str,
    tcp_proxy: Callable[[int], TcpProxy],
    tmp_path: Path,
) -> Iterator[Pipeline]:
    """A pipeline through the module's cluster, whole and with its queues empty (what an
    earlier row's consumer left unacknowledged would be rows nobody confirmed here)."""
    wait_until(lambda: _whole(cluster), 120, "the cluster whole before the test")
    node = cluster.process(cluster.topology.brokers[-1].name)
    for queue in cluster.queue_members(node):
        node.ctl(cluster.bin_dir, "purge_queue", queue)
    target = _target(cluster)
    with pipeline_for(request, target, postgres_url, tcp_proxy(5432), tmp_path) as pipe:
        yield pipe


@pytest.mark.long  # test_node_and_disk_lost_mid_publish is this fault and more
def test_node_killed_mid_publish(
    cluster_pipeline: Pipeline, cluster: RabbitCluster, chaos_table: list[ChaosRow]
) -> None:
    """kill -9 of the node publisher and consumer are connected to (the first of their
    lists), while messages are being published and stored: both fail over to the others,
    the quorum queue elects a new leader, and nothing a node confirmed is lost."""
    _kill_mid_publish(cluster_pipeline, cluster, wipe=False)
    chaos_table.append(cluster_pipeline.verify())


def test_node_and_disk_lost_mid_publish(
    cluster_pipeline: Pipeline, cluster: RabbitCluster, chaos_table: list[ChaosRow]
) -> None:
    """The same, and the node's data directory is deleted before it comes back empty: the
    other two held every message it confirmed (where an ActiveMQ broker's disk is all
    there is of them), and it rejoins and gets its replicas again."""
    _kill_mid_publish(cluster_pipeline, cluster, wipe=True)
    chaos_table.append(cluster_pipeline.verify())


def test_node_and_disk_lost_with_a_backlog(
    cluster_pipeline: Pipeline, cluster: RabbitCluster, chaos_table: list[ChaosRow]
) -> None:
    """The store is away while five runs are confirmed, so the queue holds them all; then
    the node the publisher used loses its disk. The other two replicas still hold every
    message (an ActiveMQ broker's backlog is lost with its disk: test_line_broker_faults)."""
    pipe = cluster_pipeline
    for _ in range(5):
        pipe.publish(CHUNK)
    _lose_first(pipe, cluster, wipe=True)()
    _repaired(pipe, cluster)
    pipe.publish(CHUNK, urls=pipe.target.publish_urls[:1])  # through the node back empty
    pipe.start_consumer()
    _settle(pipe, cluster)
    chaos_table.append(pipe.verify())


def test_node_partitioned_away_mid_publish(
    cluster_pipeline: Pipeline,
    rabbit_partition: tuple[RabbitCluster, Partition],
    chaos_table: list[ChaosRow],
) -> None:
    """The node publisher and consumer are connected to loses its links to the other two
    for MSGBUS_PARTITION_SECONDS (15; 60 in the long run) while messages are published
    and stored. It is the minority, and pause_minority stops it serving at once: its
    clients fail over to the majority, which goes on confirming; when the links are back
    it rejoins and its replicas catch up. Nothing a node confirmed is lost or doubled."""
    cluster, partition = rabbit_partition
    pipe, cut_off = cluster_pipeline, cluster.topology.brokers[0]

    def paused() -> bool:
        return not stomp_answers(cut_off.host, cut_off.ports.stomp, timeout=1)

    def partitioned() -> None:
        partition.isolate(cut_off.name)
        cut = time.monotonic()
        wait_until(paused, 30, f"{cut_off.name}, cut off, to stop serving (pause_minority)")
        time.sleep(max(0.0, PARTITION_SECONDS - (time.monotonic() - cut)))
        assert paused(), f"{cut_off.name} served again while still cut off"
        partition.heal()
        pipe.recovered()

    pipe.start_consumer()
    pipe.publish_through(partitioned, CHUNK)
    wait_until(lambda: _whole(cluster), 120, "the cluster whole again after the partition")
    _settle(pipe, cluster)
    chaos_table.append(pipe.verify())


def _whole(cluster: RabbitCluster) -> bool:
    """Every node serves, is a member and holds its replicas. A paused node's CLI answers
    an error until it is back, which is a no."""
    try:
        return cluster.check() == []
    except NetworkError:
        return False


def _kill_mid_publish(pipe: Pipeline, cluster: RabbitCluster, *, wipe: bool) -> None:
    pipe.start_consumer()
    pipe.publish_through(_lose_first(pipe, cluster, wipe=wipe), CHUNK)
    _repaired(pipe, cluster)
    _settle(pipe, cluster)


def _lose_first(pipe: Pipeline, cluster: RabbitCluster, *, wipe: bool) -> Callable[[], None]:
    """kill -9 of the first node (the one publisher and consumer use first); with
    ``wipe`` its data directory too."""
    kill = pipe.target.kill_broker
    assert kill is not None
    node = cluster.process(cluster.topology.brokers[0].name)

    def fault() -> None:
        kill()
        wait_until(lambda: not node.is_running(), 30, f"{node.node} to die")
        if wipe:
            shutil.rmtree(node.data_dir)

    return fault


def _repaired(pipe: Pipeline, cluster: RabbitCluster) -> None:
    assert pipe.target.restart_broker is not None
    assert cluster.check() != [], "the killed node still counts as a member"
    pipe.target.restart_broker()
    pipe.recovered()
    assert cluster.check() == []


def _settle(pipe: Pipeline, cluster: RabbitCluster) -> None:
    try:
        pipe.settle()
    except AssertionError as exc:
        raise AssertionError(f"{exc}; queues: {_queues(cluster)}") from None


def _queues(cluster: RabbitCluster) -> str:
    """What the cluster holds, for a failure message."""
    node = cluster.process(cluster.topology.brokers[-1].name)
    columns = ("name", "type", "messages_ready", "messages_unacknowledged", "consumers")
    return node.ctl(cluster.bin_dir, "list_queues", *columns, "--formatter", "json")
