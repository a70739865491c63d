"""``msgbus status`` and ``msgbus ctl`` as a user runs them (subprocesses)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from msgbus.config import MsgbusConfig
from tests.integration.presence.conftest import AgentFactory, ConfigFactory, Fake


def msgbus(*args: str, config: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "msgbus", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def write_config(config: MsgbusConfig, path: Path, **control: object) -> Path:
    data = {
        "connection": {"brokers": [str(u) for u in config.connection.brokers]},
        "control": {
            "prefix": config.control.prefix,
            "presence_topic": config.control.presence_topic,
            "presence_interval": config.control.presence_interval,
            "lost_after": 10.0,
            **control,
        },
    }
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def fakes(make_config: ConfigFactory, start_agent: AgentFactory) -> dict[str, Fake]:
    out = {}
    for site, kind, name in (("S1", "consumer", "cons@h:1"), ("S2", "publisher", "pub@h:2")):
        _, out[name] = start_agent(make_config(site, allowed_users=["ops"]), kind, name)
    return out


def test_status_table_and_json(
    make_config: ConfigFactory, fakes: dict[str, Fake], tmp_path: Path
) -> None:
    cfg = write_config(make_config(), tmp_path / "msgbus.yaml")
    state = str(tmp_path / "state.json")
    table = msgbus("status", "--listen", "1.5", "--state-file", state, config=cfg)
    assert table.returncode == 0, table.stderr
    rows = {line.split()[1]: line for line in table.stdout.splitlines() if "@h:" in line}
    assert set(rows) == {"cons@h:1", "pub@h:2"}
    assert "consumer" in rows["cons@h:1"] and "running" in rows["cons@h:1"]
    out = json.loads(
        msgbus("status", "--listen", "1.5", "--state-file", state, "--json", config=cfg).stdout
    )
    components = {c["name"]: c for c in out["components"]}
    assert components["pub@h:2"]["site"] == "S2"
    assert components["pub@h:2"]["state"] == "running"
    broker = out["broker"]
    if broker["server"].startswith("ActiveMQ/"):
        queues = {d["name"]: d for d in broker["destinations"]}
        control = f"queue://{make_config().control.prefix}.cons_h_1"
        assert queues[control]["consumers"] == 1
        assert broker["stats"]["consumers"] >= 2
    else:
        assert broker["stats"] is None
        assert broker["note"].endswith("offers no statistics over STOMP")


def test_status_of_one_component_says_where_it_came_from(
    make_config: ConfigFactory, fakes: dict[str, Fake], tmp_path: Path
) -> None:
    cfg = write_config(make_config(), tmp_path / "msgbus.yaml")
    state = str(tmp_path / "state.json")
    asked = msgbus("status", "cons@h:1", "--state-file", state, "--json", config=cfg)
    assert asked.returncode == 0, asked.stderr
    assert json.loads(asked.stdout)["source"] == "control"
    # After a survey that heard its announcements, the presence message answers.
    msgbus("status", "--listen", "1.5", "--no-broker-stats", "--state-file", state, config=cfg)
    heard = json.loads(
        msgbus("status", "cons@h:1", "--state-file", state, "--json", config=cfg).stdout
    )
    assert heard["source"] == "presence"
    assert heard["info"]["kind"] == "consumer"
    missing = msgbus("status", "ghost@h:9", "--state-file", state, "--timeout", "1", config=cfg)
    assert missing.returncode == 1
    assert missing.stderr.startswith("msgbus: error: no component named 'ghost@h:9'")
    assert "Traceback" not in missing.stderr


def test_ctl_one_component_and_refusal(
    make_config: ConfigFactory, fakes: dict[str, Fake], tmp_path: Path
) -> None:
    ops = write_config(make_config(), tmp_path / "ops.yaml", user="ops")
    done = msgbus("ctl", "cons@h:1", "pause", config=ops)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "cons@h:1 (consumer): ok"
    assert fakes["cons@h:1"].state == "paused"

    eve = write_config(make_config(), tmp_path / "eve.yaml", user="eve")
    refused = msgbus("ctl", "cons@h:1", "resume", config=eve)
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1 and "'eve' may not send 'resume'" in refused.stderr
    assert fakes["cons@h:1"].state == "paused"

    nobody = msgbus("ctl", "nobody@h:0", "status", "--timeout", "1", config=ops)
    assert nobody.returncode == 1 and "no reply to 'status'" in nobody.stderr


def test_ctl_broadcast_gathers_every_reply(
    make_config: ConfigFactory, fakes: dict[str, Fake], tmp_path: Path
) -> None:
    ops = write_config(make_config(), tmp_path / "ops.yaml", user="ops")
    everyone = msgbus("ctl", "--all", "logs", "--lines", "3", "--timeout", "2", config=ops)
    assert everyone.returncode == 0, everyone.stderr
    assert "cons@h:1 (consumer): last" in everyone.stdout
    assert "pub@h:2 (publisher): last" in everyone.stdout
    site = msgbus("ctl", "--site", "S2", "pause", "--timeout", "2", "--json", config=ops)
    assert [r["name"] for r in json.loads(site.stdout)] == ["pub@h:2"]
    assert fakes["pub@h:2"].state == "paused" and fakes["cons@h:1"].state == "running"
    usage = msgbus("ctl", "--kind", "consumer", "cons@h:1", "pause", config=ops)
    assert usage.returncode == 2 and "only COMMAND" in usage.stderr


def test_status_watch_follows_announcements_until_interrupted(
    make_config: ConfigFactory, start_agent: AgentFactory, tmp_path: Path
) -> None:
    cfg = write_config(make_config(), tmp_path / "msgbus.yaml")
    args = ["status", "--watch", "--no-broker-stats", "--listen", "0.5"]
    args += ["--state-file", str(tmp_path / "state.json"), "--config", str(cfg)]
    watch = subprocess.Popen(
        [sys.executable, "-m", "msgbus", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        time.sleep(4)  # the table is up and refreshing; now a component starts
        start_agent(make_config("S3"), "consumer", "late@h:7")
        time.sleep(3)
    finally:
        watch.send_signal(signal.SIGINT)
        out, err = watch.communicate(timeout=30)
    assert watch.returncode == 0, err
    assert "late@h:7" in out.decode()
