"""Per-topic authorization in the gateway, without a broker: the configuration (groups,
permissions in the embedded broker's words, unknown groups refused), the decision on
the STOMP destination a topic maps to, and the AMS 403 body the HTTP layer answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from msgbus.config import MsgbusConfig, load_config
from msgbus.errors import ConfigError
from msgbus.gateway.app import make_app
from msgbus.gateway.service import AmsError, Gateway
from msgbus.permissions import Action

BASE = "/v1/projects/grid"
USERS = {
    "probe": {"token": "probe-token", "groups": ["probes"]},
    "db": {"token": "db-token", "groups": ["consumers"]},
    "ops": {"token": "ops-token", "groups": ["operators", "probes"]},
    "guest": {"token": "guest-token"},
}
PERMISSIONS = [
    {"destination": "/topic/grid.>", "admin": ["operators"]},
    {"destination": "/topic/grid.site.*", "write": ["probes"], "read": ["consumers"]},
]


def _config(tmp_path: Path, **gateway: Any) -> MsgbusConfig:
    # Port 1: nothing listens; no test here may reach a broker.
    section = {"project": "grid", "topic_prefix": "/topic/grid.", "users": USERS,
               "permissions": PERMISSIONS, "state_dir": tmp_path / "state", **gateway}  # fmt: skip
    return load_config(
        overrides={"connection": {"brokers": ["stomp://127.0.0.1:1"]}, "gateway": section}
    )


def test_users_have_groups_and_permissions_use_the_brokers_words(tmp_path: Path) -> None:
    settings = _config(tmp_path).gateway
    assert settings.users["ops"].member_of() == {"operators", "probes"}
    assert settings.users["guest"].member_of() == {"users"}  # no groups: as on the broker
    assert [p.write for p in settings.permissions] == [[], ["probes"]]


def test_a_group_no_user_is_in_is_a_configuration_error(tmp_path: Path) -> None:
    typo = [{"destination": "/topic/grid.>", "write": ["prboes"]}]
    with pytest.raises(
        ConfigError, match=r"gateway: .*permissions name groups no user is in: \['prboes'\]"
    ):
        _config(tmp_path, permissions=typo)


def test_a_permission_that_is_no_stomp_destination_is_a_configuration_error(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError, match="must look like /queue/NAME or /topic/NAME"):
        _config(tmp_path, permissions=[{"destination": "site.a", "read": ["consumers"]}])


@pytest.mark.parametrize(
    ("user", "action", "topic", "allowed"),
    [
        ("probe", "write", "site.a", True),
        ("probe", "read", "site.a", False),
        ("probe", "write", "site.a.b", False),  # * is one name element
        ("probe", "admin", "site.a", False),
        ("db", "read", "site.a", True),
        ("db", "write", "site.a", False),
        ("ops", "admin", "anything.at.all", True),
        ("ops", "write", "site.b", True),  # groups add up
        ("guest", "read", "site.a", False),
        ("stranger", "read", "site.a", False),
    ],
)
def test_the_decision_is_on_the_stomp_destination_of_the_topic(
    tmp_path: Path, user: str, action: Action, topic: str, allowed: bool
) -> None:
    gateway = Gateway(_config(tmp_path))
    if allowed:
        gateway.authorize(user, action, topic)
        return
    with pytest.raises(AmsError) as refused:
        gateway.authorize(user, action, topic)
    assert refused.value.code == 403
    assert f"user {user} may not" in str(refused.value)
    assert f"topic {topic} (/topic/grid.{topic})" in str(refused.value)


def test_without_permissions_every_user_may_do_everything(tmp_path: Path) -> None:
    gateway = Gateway(_config(tmp_path, permissions=[]))
    for action in ("read", "write", "admin"):
        gateway.authorize("guest", action, "site.a")


def _client(tmp_path: Path, token: str) -> TestClient:
    return TestClient(make_app(Gateway(_config(tmp_path))), headers={"x-api-key": token})


def test_a_refusal_is_a_403_ams_body_naming_user_action_and_topic(tmp_path: Path) -> None:
    answer = _client(tmp_path, "probe-token").put(f"{BASE}/topics/site.a")
    assert answer.status_code == 403
    error = answer.json()["error"]
    assert error["code"] == 403 and error["status"] == "FORBIDDEN"
    assert "user probe may not create or delete topic site.a" in error["message"]
    assert _client(tmp_path, "ops-token").put(f"{BASE}/topics/site.a").status_code == 200
    assert _client(tmp_path, "probe-token").delete(f"{BASE}/topics/site.a").status_code == 403


def test_a_publish_without_write_is_refused_before_anything_is_looked_at(
    tmp_path: Path,
) -> None:
    # 403, not 404: the topic does not exist, and a broker would not be reachable.
    answer = _client(tmp_path, "db-token").post(
        f"{BASE}/topics/site.a:publish", json={"messages": [{"data": "eA=="}]}
    )
    assert answer.status_code == 403
    assert "user db may not publish to topic site.a" in answer.json()["error"]["message"]


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("PUT", "", {"topic": "projects/grid/topics/site.a"}),
        ("DELETE", "", None),
        ("POST", ":pull", {"maxMessages": 1, "returnImmediately": True}),
        ("POST", ":acknowledge", {"ackIds": ["x"]}),
        ("POST", ":modifyAckDeadline", {"ackDeadlineSeconds": 5}),
    ],
)
def test_a_subscription_needs_read_on_its_topic(
    tmp_path: Path, method: str, suffix: str, body: dict[str, Any] | None
) -> None:
    state = tmp_path / "state" / "gateway.json"
    state.parent.mkdir()
    subs = {"db": {"topic": "site.a", "ackDeadlineSeconds": 10}}
    state.write_text(json.dumps({"topics": ["site.a"], "subscriptions": subs}))
    name = "new" if method == "PUT" else "db"
    answer = _client(tmp_path, "probe-token").request(
        method, f"{BASE}/subscriptions/{name}{suffix}", json=body
    )
    assert answer.status_code == 403
    assert "user probe may not read from topic site.a" in answer.json()["error"]["message"]
