"""Issue 24, finding 7, as users run it: every local anonymous client shares one
destination budget (per address), and a stranger that spent it must not keep `msgbus
consume` from its destination and control queue, nor `msgbus ctl` from asking it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from msgbus.broker import BrokerConfig, BrokerLimits, BrokerThread
from msgbus.errors import BrokerError
from msgbus.transport.connection import Connection
from msgbus.transport.url import BrokerURL
from tests.fixtures.pipeline import MsgbusProcess, run_msgbus, wait_until


def _create_queues(url: str, names: list[str]) -> None:
    conn = Connection(BrokerURL.model_validate(url))
    conn.connect()
    try:
        for k, name in enumerate(names):
            conn.send(name, b"x", {"persistent": "true"}, receipt=f"r{k}")
            conn.wait_for_receipt(f"r{k}", 10)
    finally:
        conn.close()


def test_a_stranger_spending_the_local_budget_does_not_stop_msgbus_consume(
    tmp_path: Path,
) -> None:
    limits = BrokerLimits(max_destinations_per_connection=3, max_destinations_per_user=5)
    with BrokerThread(BrokerConfig(port=0, limits=limits)) as broker:
        _create_queues(broker.url, [f"/queue/stranger.{i}" for i in range(3)])
        _create_queues(broker.url, [f"/queue/stranger.{i}" for i in range(3, 5)])
        with pytest.raises(BrokerError, match=r"anonymous@127\.0\.0\.1 already created 5 queues"):
            _create_queues(broker.url, ["/queue/stranger.5"])
        config = tmp_path / "msgbus.yaml"
        config.write_text(yaml.safe_dump({"connection": {"brokers": [broker.url]}}))
        store = f"sqlite:///{tmp_path / 'results.db'}"
        assert run_msgbus(["db", "init", "--store", store]).returncode == 0
        consumer = MsgbusProcess(
            tmp_path / "consumer.log",
            ["consume", "--config", str(config), "--store", store, "--name", "c1",
             "--destination", "/queue/grid.results"],
        )  # fmt: skip
        try:
            consumer.wait_for_output("consuming ")

            def answered() -> bool:
                asked = run_msgbus(["ctl", "c1", "status", "--config", str(config)])
                return asked.returncode == 0 and asked.stdout.startswith("c1 (")

            wait_until(answered, 60, "c1 to answer msgbus ctl")
            assert consumer.running(), consumer.output()
            assert "limit exceeded" not in consumer.output(), consumer.output()
        finally:
            consumer.stop()
