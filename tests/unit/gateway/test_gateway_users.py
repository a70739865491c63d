"""The gateway's read-only users and project in memory (FastAPI's TestClient, no broker),
and its counts kept in ``state_dir``: what a restart reads back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from msgbus.config import load_config
from msgbus.gateway.app import make_app
from msgbus.gateway.metrics import Counters
from msgbus.gateway.service import Gateway


def _client(tmp_path: Path, token: str = "secret") -> TestClient:
    # Port 1: nothing listens; no test here may reach a broker.
    config = load_config(
        overrides={
            "connection": {"brokers": ["stomp://127.0.0.1:1"]},
            "gateway": {
                "project": "grid",
                "users": {"ops": {"token": "secret"}, "dev": {"token": "other"}},
                "state_dir": tmp_path / "state",
            },
        }
    )
    return TestClient(make_app(Gateway(config)), headers={"x-api-key": token})


def test_without_permissions_every_user_has_every_role_and_topic(tmp_path: Path) -> None:
    client = _client(tmp_path)
    client.put("/v1/projects/grid/topics/probes")
    dev: dict[str, Any] = client.get("/v1/users/dev").json()
    assert dev["token"] == "" and dev["service_roles"] == []
    assert dev["projects"] == [
        {"project": "grid", "roles": ["project_admin", "publisher", "consumer"],
         "topics": ["probes"], "subscriptions": []}
    ]  # fmt: skip
    assert client.get("/v1/users/profile").json()["token"] == "secret"
    # The uuid is derived: the same from another gateway on the same configuration.
    again = _client(tmp_path / "again", token="other")
    assert again.get("/v1/users/profile").json()["uuid"] == dev["uuid"]
    assert again.get(f"/v1/users:byUUID/{dev['uuid']}").json()["name"] == "dev"
    assert "projects" not in client.get("/v1/users").json()["users"][0]  # no details
    assert client.get("/v1/users", params={"project": "other"}).json()["users"] == []
    assert client.get("/v1/projects/other/members").status_code == 404
    # In the OpenAPI document that schemathesis checks; what changes users is not.
    paths = client.get("/openapi.json").json()["paths"]
    members = "/v1/projects/{project}/members"
    served = {"/v1/projects", "/v1/projects/{project}", members, f"{members}/{{user}}",
              "/v1/users", "/v1/users/profile", "/v1/users:byToken/{token}",
              "/v1/users:byUUID/{uuid}", "/v1/users/{user}"}  # fmt: skip
    assert served <= set(paths)
    assert set(paths["/v1/users/{user}"]) == {"get"}


def test_counts_and_push_states_are_read_back_after_a_restart(tmp_path: Path) -> None:
    counters = Counters(tmp_path)
    counters.published("t", 3, 30)
    counters.pulled("s", 2, 20)
    push = counters.push_state("s")
    push.pushed, push.failures, push.state, push.last_error = 4, 1, "active", "a 503"
    counters.pulled("gone", 1, 1)
    counters.forget(sub="gone")
    counters.close()
    again = Counters(tmp_path)
    try:
        topic = {m["metric"]: m["timeseries"] for m in again.topic("t", 0)["metrics"]}
        assert topic["topic.number_of_messages"][0]["value"] == 3
        assert topic["topic.number_of_bytes"][0]["value"] == 30
        assert [d["value"] for d in topic["topic.number_of_daily_messages"]] == [3]
        sub = {m["metric"]: m["timeseries"][0]["value"] for m in
               again.subscription("s", again.push_state("s"))["metrics"]}  # fmt: skip
        assert sub["subscription.number_of_messages"] == 2
        assert (sub["subscription.push_messages"], sub["subscription.push_failures"]) == (4, 1)
        # What it did is kept; what it does is not known until it pushes again.
        assert sub["subscription.push_state"].startswith("starting: 4 messages pushed")
        assert "a 503" in sub["subscription.push_state"]
        gone = again.subscription("gone")["metrics"]
        assert gone[0]["timeseries"][0]["value"] == 0
    finally:
        again.close()
