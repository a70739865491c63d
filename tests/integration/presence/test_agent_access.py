"""The control agent connects wherever its component does: on a TLS broker that requires
client certificates (the embedded broker's ``client_ca``, ActiveMQ's needClientAuth), a
consumer and the embedded broker itself show up in ``msgbus status`` and answer ``msgbus
ctl``, with the transport settings of their configuration; so does an embedded broker
that requires logins, when its msgbus.yaml names none."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import yaml

from msgbus.network.activemq import free_port
from tests.fixtures.activemq import ActiveMQ
from tests.fixtures.pipeline import MsgbusProcess, run_msgbus, wait_until
from tests.fixtures.pki import Pki


def _control() -> dict[str, Any]:
    prefix = "t" + uuid.uuid4().hex[:10]
    return {"prefix": prefix, "presence_topic": f"/topic/{prefix}.presence",
            "presence_interval": 0.5}  # fmt: skip


def _client_config(path: Path, port: int, pki: Pki, control: dict[str, Any]) -> list[str]:
    """msgbus.yaml of a client with the PKI's client certificate; its --config option."""
    tls = {"cert": str(pki.client_cert), "key": str(pki.client_key), "ca_file": str(pki.ca)}
    connection = {"brokers": [f"stomp+ssl://127.0.0.1:{port}"], "tls": tls}
    return _write_config(path, {"connection": connection, "control": control})


def _write_config(path: Path, data: dict[str, Any]) -> list[str]:
    path.write_text(yaml.safe_dump(data))
    return ["--config", str(path)]


def _serve(
    tmp_path: Path, port: int, broker: dict[str, Any], control: dict[str, Any]
) -> MsgbusProcess:
    """``msgbus broker serve`` named the-broker, whose msgbus.yaml holds only ``control``."""
    broker_yaml = tmp_path / "broker.yaml"
    broker_yaml.write_text(yaml.safe_dump(broker))
    config = _write_config(tmp_path / "broker-msgbus.yaml", {"control": control})
    process = MsgbusProcess(
        tmp_path / "broker.log",
        ["broker", "serve", "--port", str(port), "--broker-config", str(broker_yaml),
         "--name", "the-broker", *config],
    )  # fmt: skip
    process.wait_for_output("listening on")
    return process


def _consumer(tmp_path: Path, config: list[str], destination: str) -> MsgbusProcess:
    store = f"sqlite:///{tmp_path / 'results.db'}"
    assert run_msgbus(["db", "init", "--store", store]).returncode == 0
    return MsgbusProcess(
        tmp_path / "consumer.log",
        ["consume", "--store", store, "--destination", destination, "--name", "tls-consumer",
         *config],
    )  # fmt: skip


def _answer_status_and_ctl(names: set[str], config: list[str], tmp_path: Path) -> None:
    state = ["--state-file", str(tmp_path / "state.json")]

    def listed() -> bool:
        out = run_msgbus(["status", "--listen", "1", "--no-broker-stats", "--json", *state,
                          *config])  # fmt: skip
        return names <= {c["name"] for c in json.loads(out.stdout)["components"]}

    wait_until(listed, 60, f"{sorted(names)} in msgbus status")
    for name in sorted(names):
        asked = run_msgbus(["ctl", name, "status", *config])
        assert asked.returncode == 0, asked.stdout
        assert asked.stdout.startswith(f"{name} ("), asked.stdout


def test_components_on_an_embedded_broker_with_client_ca(pki: Pki, tmp_path: Path) -> None:
    port = free_port()
    broker_tls = {"cert": str(pki.server_cert), "key": str(pki.server_key),
                  "client_ca": str(pki.ca)}  # fmt: skip
    control = _control()
    config = _client_config(tmp_path / "msgbus.yaml", port, pki, control)
    # The broker's msgbus.yaml says nothing of TLS: its agent must take the broker's own.
    broker = _serve(tmp_path, port, {"tls": broker_tls}, control)
    consumer = None
    try:
        consumer = _consumer(tmp_path, config, f"/queue/{control['prefix']}.data")
        _answer_status_and_ctl({"the-broker", "tls-consumer"}, config, tmp_path)
    finally:
        if consumer is not None:
            consumer.stop()
        broker.stop()
    assert "control connection" not in broker.output(), broker.output()


def test_a_consumer_on_activemq_with_need_client_auth(
    activemq_tls: ActiveMQ, pki: Pki, tmp_path: Path
) -> None:
    assert activemq_tls.ssl_port is not None
    control = _control()
    config = _client_config(tmp_path / "msgbus.yaml", activemq_tls.ssl_port, pki, control)
    consumer = _consumer(tmp_path, config, f"/queue/{control['prefix']}.data")
    try:
        _answer_status_and_ctl({"tls-consumer"}, config, tmp_path)
    finally:
        consumer.stop()
    assert "control connection" not in consumer.output(), consumer.output()


def test_an_embedded_broker_with_logins(tmp_path: Path) -> None:
    port = free_port()
    control = _control()
    # Its msgbus.yaml names no login: the agent must get in all the same.
    broker = _serve(tmp_path, port, {"users": {"ops": {"password": "s3cret"}}}, control)
    try:
        connection = {"brokers": [f"stomp://127.0.0.1:{port}"], "login": "ops",
                      "passcode": "s3cret"}  # fmt: skip
        config = _write_config(
            tmp_path / "ops.yaml", {"connection": connection, "control": control}
        )
        _answer_status_and_ctl({"the-broker"}, config, tmp_path)
    finally:
        broker.stop()
    assert "control connection" not in broker.output(), broker.output()
