"""`msgbus network bench` on a RabbitMQ cluster: one node, the cluster and ActiveMQ in one
table, each having stored every message it confirmed (measure() waits for the rows)."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from msgbus.cli.network_cmd import network
from msgbus.network.rabbitmq_local import RabbitCluster


@pytest.mark.activemq
def test_bench_prints_three_engines_with_ratios(rabbit_cluster: RabbitCluster) -> None:
    topo = rabbit_cluster.state_dir / "topology.yaml"
    topo.write_text(rabbit_cluster.topology.model_dump_json(by_alias=True), encoding="utf-8")
    args = ["bench", str(topo), "--state-dir", str(rabbit_cluster.state_dir)]
    result = CliRunner().invoke(network, [*args, "--count", "300", "--rounds", "1"])
    assert result.exit_code == 0, result.output + str(result.exception)
    rows = {
        m.group(1).strip(): m.group(2)
        for m in re.finditer(
            r"│ (rabbitmq, 1 node|rabbitmq, 3-node quorum|activemq, 1 broker)"
            r"\s*│\s*([\d,]+) │",
            result.output,
        )
    }
    assert set(rows) == {"rabbitmq, 1 node", "rabbitmq, 3-node quorum", "activemq, 1 broker"}
    assert all(int(rate.replace(",", "")) > 0 for rate in rows.values())
    assert "│ 1.00x │ 1.00x │" in result.output  # the single node is the baseline
