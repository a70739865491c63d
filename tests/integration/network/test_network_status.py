"""`msgbus network status` as an operator runs it: from any directory, never calling a
running broker down, and warning about a broker version with known RCE advisories."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from msgbus.network.activemq import find_installation, free_port
from tests.fixtures.activemq import FAST_START_JVM
from tests.fixtures.pipeline import run_msgbus
from tests.fixtures.services import require_service

pytestmark = pytest.mark.activemq


def test_status_from_elsewhere_sees_the_running_broker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_service("ActiveMQ (ACTIVEMQ_HOME or /usr/share/activemq)", find_installation)
    topology = tmp_path / "topology" / "solo.yaml"
    topology.parent.mkdir()
    topology.write_text(
        yaml.safe_dump(
            {
                "name": "solo",
                "security": {"authentication": False},
                "brokers": [
                    {
                        "name": "solo",
                        "heap_mb": 128,
                        "jvm_options": FAST_START_JVM,
                        "ports": {"stomp": free_port(), "openwire": free_port()},
                    }
                ],
            }
        )
    )
    env = {"XDG_STATE_HOME": str(tmp_path / "state")}
    up = run_msgbus(["network", "up", str(topology)], env=env, timeout=180)
    try:
        assert up.returncode == 0, up.stdout
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        monkeypatch.chdir(elsewhere)
        status = run_msgbus(["network", "status", str(topology)], env=env)
        assert status.returncode == 0, status.stdout
        assert "solo" in status.stdout and "down" not in status.stdout
        # Debian's 5.17.2 is older than the fixed releases: the warning names the CVE.
        assert "CVE-2023-46604" in status.stdout
        # Another user's state directory: the broker answers, so it is not "down".
        other = run_msgbus(
            ["network", "status", str(topology)], env={"XDG_STATE_HOME": str(tmp_path / "x")}
        )
        assert "not started from" in other.stdout and "network up" not in other.stdout
    finally:
        run_msgbus(["network", "down", str(topology)], env=env, timeout=120)
