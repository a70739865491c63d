"""Broker configuration: YAML file under command-line overrides, validated once."""

from __future__ import annotations

from pathlib import Path

import pytest

from msgbus.broker import load_broker_config
from msgbus.broker.auth import AccessDenied, Gatekeeper, LimitExceeded, Owner
from msgbus.errors import ConfigError
from msgbus.permissions import Action

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
    assert config.users["probe"].password.get_secret_value() == "s3cret"
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
    probe = gate.authenticate("probe", "s3cret", "10.0.0.1")
    assert probe is not None
    assert (probe.user, probe.groups) == ("probe", frozenset({"users"}))
    assert gate.authenticate("probe", "wrong", "10.0.0.1") is None
    assert gate.authenticate("nobody", "s3cret", "10.0.0.1") is None
    assert gate.authenticate(None, None, "10.0.0.1") is None
    first, second, third = _Socket(), _Socket(), _Socket()
    for socket in (first, second, third):
        gate.admit_pending(socket)
    gate.log_in(first)
    gate.log_in(second)
    with pytest.raises(LimitExceeded, match="limit of 2 connections"):
        gate.log_in(third)
    with pytest.raises(LimitExceeded, match="/queue/x holds 10 messages"):
        gate.check_depth("/queue/x", 10)


def test_anonymous_when_no_users_are_configured() -> None:
    owner = Gatekeeper(load_broker_config()).authenticate(None, None, "10.0.0.1")
    assert owner is not None
    assert owner.user == "anonymous@10.0.0.1"


class _Socket:
    evicted = False

    def evict(self) -> None:
        self.evicted = True


def test_waiting_sockets_have_their_own_budget_and_the_oldest_makes_room() -> None:
    gate = Gatekeeper(
        load_broker_config(limits={"max_pending_connections": 2, "max_connections": 1})
    )
    sockets = [_Socket() for _ in range(3)]
    assert gate.admit_pending(sockets[0]) is None
    assert gate.admit_pending(sockets[1]) is None
    assert gate.admit_pending(sockets[2]) is sockets[0]
    gate.log_in(sockets[2])  # waiting sockets never took the connection slot
    assert (gate.connections, list(gate.pending)) == (1, [sockets[1]])
    gate.release(sockets[2], logged_in=True)
    assert gate.connections == 0


def test_users_with_groups_and_permissions(tmp_path: Path) -> None:
    path = tmp_path / "broker.yaml"
    path.write_text(
        "users:\n  probe: {password: p, groups: [probes]}\n  plain: q\n"
        "permissions:\n  - {destination: /queue/grid.>, write: [probes], admin: [probes]}\n"
    )
    gate = Gatekeeper(load_broker_config(path))
    probe = gate.authenticate("probe", "p", "h")
    plain = gate.authenticate("plain", "q", "h")
    assert probe is not None and plain is not None
    gate.authorize(probe, "write", "/queue/grid.a")
    refused: list[tuple[Owner, Action, str]] = [
        (probe, "read", "/queue/grid.a"),
        (plain, "write", "/queue/grid.a"),
        (probe, "write", "/queue/other"),
    ]
    for owner, action, dest in refused:
        with pytest.raises(AccessDenied, match=f"may not .* {dest}"):
            gate.authorize(owner, action, dest)
    # msgbus's control destinations are open to every user, as in rendered networks.
    gate.authorize(plain, "write", "/queue/msgbus.control.x")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("permissions: [{destination: /queue/a, read: [x]}]\n", "permissions need users"),
        (
            "users: {u: p}\npermissions: [{destination: /queue/a, read: [ghosts]}]\n",
            r"groups no user is in: \['ghosts'\]",
        ),
    ],
)
def test_permissions_are_checked_at_load(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "broker.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_broker_config(path)
