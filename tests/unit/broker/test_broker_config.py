"""Broker configuration: YAML file under command-line overrides, validated once."""

from __future__ import annotations

from pathlib import Path

import pytest

from msgbus.broker import load_broker_config
from msgbus.broker.auth import Gatekeeper, LimitExceeded
from msgbus.errors import ConfigError

YAML = """
name: site-broker
port: 61700
users:
  probe: s3cret
limits:
  max_connections: 2
  max_queue_depth: 10
heartbeat_ms: [5000, 5000]
"""


def test_flags_override_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broker.yaml"
    path.write_text(YAML)
    config = load_broker_config(path, port=0, name=None, data_dir=tmp_path / "data")
    assert config.name == "site-broker"  # None means the flag was not given
    assert config.port == 0
    assert config.data_dir == tmp_path / "data"
    assert config.heartbeat_ms == (5000, 5000)
    assert config.users["probe"].get_secret_value() == "s3cret"
    assert "s3cret" not in repr(config)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("limits:\n  max_queue_depth: 0\n", "limits.max_queue_depth"),
        ("port: 70000\n", "port"),
        ("name: 'has space'\n", "name"),
        ("colour: blue\n", "colour"),
    ],
)
def test_invalid_values_name_the_field(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "broker.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        load_broker_config(path)


def test_gatekeeper_logins_and_limits(tmp_path: Path) -> None:
    path = tmp_path / "broker.yaml"
    path.write_text(YAML)
    gate = Gatekeeper(load_broker_config(path))
    assert gate.authenticate("probe", "s3cret")
    assert not gate.authenticate("probe", "wrong")
    assert not gate.authenticate("nobody", "s3cret")
    assert not gate.authenticate(None, None)
    gate.admit_connection()
    gate.admit_connection()
    with pytest.raises(LimitExceeded, match="limit of 2 connections"):
        gate.admit_connection()
    with pytest.raises(LimitExceeded, match="/queue/x holds 10 messages"):
        gate.check_depth("/queue/x", 10)


def test_anonymous_when_no_users_are_configured() -> None:
    assert Gatekeeper(load_broker_config()).authenticate(None, None)
