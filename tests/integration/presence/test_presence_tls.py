"""The control agent connects wherever its component does: on a TLS broker that requires
client certificates (``client_ca``), a consumer and the broker itself show up in ``msgbus
status`` and answer ``msgbus ctl``, with the transport settings of their configuration."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import yaml

from msgbus.network.activemq import free_port
from tests.fixtures.pipeline import MsgbusProcess, run_msgbus, wait_until
from tests.fixtures.pki import Pki


def test_components_on_a_client_certificate_broker_answer_status_and_ctl(
    pki: Pki, tmp_path: Path
) -> None:
    port = free_port()
    broker_yaml = tmp_path / "broker.yaml"
    broker_yaml.write_text(
        yaml.safe_dump(
            {
                "tls": {
                    "cert": str(pki.server_cert),
                    "key": str(pki.server_key),
                    "client_ca": str(pki.ca),
                }
            }
        )
    )
    prefix = "t" + uuid.uuid4().hex[:10]
    control = {
        "prefix": prefix,
        "presence_topic": f"/topic/{prefix}.presence",
        "presence_interval": 0.5,
    }
    # The broker's msgbus.yaml says nothing of TLS: its agent must take the broker's own.
    broker_msgbus_yaml = tmp_path / "broker-msgbus.yaml"
    broker_msgbus_yaml.write_text(yaml.safe_dump({"control": control}))
    msgbus_yaml = tmp_path / "msgbus.yaml"
    msgbus_yaml.write_text(
        yaml.safe_dump(
            {
                "connection": {
                    "brokers": [f"stomp+ssl://127.0.0.1:{port}"],
                    "tls": {
                        "cert": str(pki.client_cert),
                        "key": str(pki.client_key),
                        "ca_file": str(pki.ca),
                    },
                },
                "control": control,
            }
        )
    )
    config = ["--config", str(msgbus_yaml)]
    broker = MsgbusProcess(
        tmp_path / "broker.log",
        ["broker", "serve", "--port", str(port), "--broker-config", str(broker_yaml),
         "--name", "tls-broker", "--config", str(broker_msgbus_yaml)],
    )  # fmt: skip
    consumer = None
    try:
        broker.wait_for_output("listening on")
        store = f"sqlite:///{tmp_path / 'results.db'}"
        assert run_msgbus(["db", "init", "--store", store]).returncode == 0
        consumer = MsgbusProcess(
            tmp_path / "consumer.log",
            ["consume", "--store", store, "--destination", f"/queue/{prefix}.data",
             "--name", "tls-consumer", *config],
        )  # fmt: skip

        def both_listed() -> bool:
            out = run_msgbus(["status", "--listen", "1", "--no-broker-stats", "--json",
                              "--state-file", str(tmp_path / "state.json"), *config])  # fmt: skip
            names = {c["name"] for c in json.loads(out.stdout)["components"]}
            return {"tls-broker", "tls-consumer"} <= names

        wait_until(both_listed, 60, "the broker and the consumer in msgbus status")
        for name in ("tls-broker", "tls-consumer"):
            asked = run_msgbus(["ctl", name, "status", *config])
            assert asked.returncode == 0, asked.stdout
            assert asked.stdout.startswith(f"{name} ("), asked.stdout
    finally:
        if consumer is not None:
            consumer.stop()
        broker.stop()
    assert "control connection" not in broker.output(), broker.output()
