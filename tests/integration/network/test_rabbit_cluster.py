"""`msgbus network status/verify` on a local 3-node RabbitMQ cluster, and a node that
loses its data coming back empty and getting its replicas again."""

from __future__ import annotations

import shutil
import time

from click.testing import CliRunner

from msgbus.cli.network_cmd import network
from msgbus.network.rabbitmq_local import RabbitCluster


def _cli(cluster: RabbitCluster, *args: str) -> tuple[int, str]:
    topo = cluster.state_dir / "topology.yaml"
    topo.write_text(cluster.topology.model_dump_json(by_alias=True), encoding="utf-8")
    result = CliRunner().invoke(network, [*args, str(topo), "--state-dir", str(cluster.state_dir)])
    return result.exit_code, result.output + str(result.exception or "")


def test_status_and_verify_see_the_whole_cluster(rabbit_cluster: RabbitCluster) -> None:
    code, out = _cli(rabbit_cluster, "status")
    assert code == 0, out
    assert "all 3 members running" in out
    code, out = _cli(rabbit_cluster, "verify")
    assert code == 0, out
    assert "all 9 expected paths deliver" in out


def test_node_back_empty_rejoins_with_replicas(rabbit_cluster: RabbitCluster) -> None:
    name = rabbit_cluster.topology.brokers[1].name
    node = rabbit_cluster.process(name)
    node.kill()
    time.sleep(1)
    code, out = _cli(rabbit_cluster, "status")
    assert code != 0 and f"brokers down: {name}" in out, out
    shutil.rmtree(node.data_dir)
    started = time.monotonic()
    rabbit_cluster.up([name])
    assert time.monotonic() - started < 60
    assert rabbit_cluster.check() == []
