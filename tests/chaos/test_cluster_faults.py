"""The replicated RabbitMQ cluster (brokers/rabbit3.yaml, engine rabbitmq) under faults.

The consumer group's queue is a quorum queue with a replica on each of three nodes:
RabbitMQ confirms a message (the STOMP receipt) only once a majority holds it. Publisher
and consumer list all three nodes and fail over between them. Every message a node
confirmed must be stored exactly once, whichever node dies. The long run:
``MSGBUS_CHAOS_SCALE=20 pytest -m chaos tests/chaos/test_cluster_faults.py``.

Not to be run beside tests/chaos/test_pipeline_faults.py's rabbitmq rows, whose
"kill the broker" kills every beam.smp on the machine, these nodes too.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from msgbus.network.rabbitmq_local import RabbitCluster
from tests.chaos.harness import Pipeline, PublishRun, Target
from tests.fixtures.chaos import ChaosRow
from tests.fixtures.pipeline import wait_until
from tests.fixtures.proxy import TcpProxy

pytestmark = [pytest.mark.chaos, pytest.mark.postgres, pytest.mark.rabbitmq]

SCALE = int(os.environ.get("MSGBUS_CHAOS_SCALE", "1"))
CHUNK = 200 * SCALE


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
def cluster_pipeline(
    request: pytest.FixtureRequest,
    rabbit_cluster: RabbitCluster,
    postgres_url: str,
    tcp_proxy: Callable[[int], TcpProxy],
    tmp_path: Path,
) -> Iterator[Pipeline]:
    scenario = request.node.originalname.removeprefix("test_").replace("_", "-")
    proxy = tcp_proxy(5432)
    through_proxy = postgres_url.replace(":5432/", f":{proxy.port}/")
    pipe = Pipeline(scenario, _target(rabbit_cluster), tmp_path, through_proxy, postgres_url)
    yield pipe
    for consumer in pipe.consumers:
        consumer.kill()


def test_node_killed_mid_publish(
    cluster_pipeline: Pipeline, rabbit_cluster: RabbitCluster, chaos_table: list[ChaosRow]
) -> None:
    """kill -9 of the node publisher and consumer are connected to (the first of their
    lists), while messages are being published and stored: both fail over to the others,
    the quorum queue elects a new leader, and nothing a node confirmed is lost."""
    _kill_mid_publish(cluster_pipeline, rabbit_cluster, wipe=False)
    chaos_table.append(cluster_pipeline.verify())


def test_node_and_disk_lost_mid_publish(
    cluster_pipeline: Pipeline, rabbit_cluster: RabbitCluster, chaos_table: list[ChaosRow]
) -> None:
    """The same, and the node's data directory is deleted before it comes back empty: the
    other two held every message it confirmed (where an ActiveMQ broker's disk is all
    there is of them), and it rejoins and gets its replicas again."""
    _kill_mid_publish(cluster_pipeline, rabbit_cluster, wipe=True)
    chaos_table.append(cluster_pipeline.verify())


def _kill_mid_publish(pipe: Pipeline, cluster: RabbitCluster, *, wipe: bool) -> None:
    target = pipe.target
    assert target.kill_broker is not None and target.restart_broker is not None
    pipe.start_consumer()
    runs: list[PublishRun] = []
    publishing = threading.Thread(target=lambda: runs.extend(pipe.publish(CHUNK) for _ in range(5)))
    publishing.start()
    wait_until(lambda: pipe.stored_count() >= CHUNK // 2, 60, "the first rows")
    target.kill_broker()
    if wipe:
        shutil.rmtree(cluster.process(cluster.topology.brokers[0].name).data_dir)
    publishing.join(180)
    assert not publishing.is_alive(), "msgbus publish hung after the node was killed"
    assert all(r.returncode == 0 and r.failed == 0 for r in runs), [r.output for r in runs]
    assert cluster.check() != [], "the killed node still counts as a member"
    target.restart_broker()
    pipe.recovered()
    assert cluster.check() == []
    try:
        pipe.settle()
    except AssertionError as exc:
        raise AssertionError(f"{exc}; queues: {_queues(cluster)}") from None


def _queues(cluster: RabbitCluster) -> str:
    """What the cluster holds, for a failure message."""
    node = cluster.process(cluster.topology.brokers[-1].name)
    columns = ("name", "type", "messages_ready", "messages_unacknowledged", "consumers")
    return node.ctl(cluster.bin_dir, "list_queues", *columns, "--formatter", "json")
