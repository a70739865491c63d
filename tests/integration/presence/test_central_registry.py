"""Central information: `msgbus registry` keeps what components say about themselves in
the store; `msgbus status NAME` shows a killed component's last state, marked lost, with
its source."""

from __future__ import annotations

import json
import time
from pathlib import Path

from msgbus.broker import BrokerConfig
from msgbus.broker.server import BrokerThread
from tests.fixtures.pipeline import MsgbusProcess, run_msgbus, wait_until


def _status(name: str, store: str, env: dict[str, str], *extra: str) -> dict[str, object]:
    done = run_msgbus(
        ["status", name, "--store", store, "--json", "--timeout", "1", *extra], env=env
    )
    assert done.returncode == 0, done.stdout
    return dict(json.loads(done.stdout[done.stdout.index("{") :]))


def _central_state(name: str, store: str, env: dict[str, str]) -> object:
    """The state the registry recorded for ``name``; None until it recorded one (a
    `msgbus status` that starts quickly can ask before the registry wrote anything)."""
    args = ["status", name, "--store", store, "--json", "--timeout", "1", "--source", "central"]
    done = run_msgbus(args, env=env)
    if done.returncode != 0 and "knows no component" in done.stdout:
        return None
    assert done.returncode == 0, done.stdout
    return _info(dict(json.loads(done.stdout[done.stdout.index("{") :]))).get("state")


def _info(status: dict[str, object]) -> dict[str, object]:
    """The ``info`` object of a status answer."""
    info = status["info"]
    assert isinstance(info, dict)
    return info


def test_a_killed_component_shows_its_last_state_marked_lost(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'central.db'}"
    assert run_msgbus(["db", "init", "--store", store]).returncode == 0
    with BrokerThread(BrokerConfig(port=0)) as broker:
        env = {
            "MSGBUS_CONNECTION__BROKERS": json.dumps([broker.url]),
            "MSGBUS_CONTROL__PRESENCE_INTERVAL": "0.5",
            "MSGBUS_CONTROL__LOST_AFTER": "3",
            "XDG_CACHE_HOME": str(tmp_path / "cache"),
        }
        registry = MsgbusProcess(tmp_path / "registry.log", ["registry", "--store", store], env)
        registry.wait_for_output("registry: keeping")
        consumer = MsgbusProcess(
            tmp_path / "consumer.log",
            ["consume", "--name", "store-1", "--destination", "/queue/central",
             "--store", store],
            env,
        )  # fmt: skip
        consumer.wait_for_output("consuming ")
        wait_until(
            lambda: _central_state("store-1", store, env) == "running",
            20,
            "the registry to know store-1",
        )
        alive = _status("store-1", store, env)
        assert alive["source"] in ("presence", "control")  # it answers for itself
        consumer.kill()
        time.sleep(3.5)  # control.lost_after
        gone = _status("store-1", store, env)
        registry.stop()
    assert gone["source"] == "central" and float(str(gone["age"])) > 3
    info = _info(gone)
    assert (info["state"], info["last_state"], info["kind"]) == ("lost", "running", "consumer")
