"""The offset routes without a broker: a 501 saying how to turn the retention log on
while it is off, and in the OpenAPI document only once it is on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from msgbus.config import load_config
from msgbus.gateway.app import make_app
from msgbus.gateway.service import Gateway

SUB = "/v1/projects/grid/subscriptions/s"


@pytest.fixture(params=[False, True], ids=["off", "on"])
def gateway(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Gateway]:
    # Port 1: nothing listens; no request here reaches a broker.
    config = load_config(
        overrides={
            "connection": {"brokers": ["stomp://127.0.0.1:1"]},
            "gateway": {
                "project": "grid",
                "users": {"ops": {"token": "secret"}},
                "state_dir": tmp_path / "state",
                "retention": {"enabled": request.param},
            },
        }
    )
    gateway = Gateway(config)
    yield gateway
    gateway.close()


def test_offset_routes_are_501_while_the_log_is_off_and_documented_once_on(
    gateway: Gateway,
) -> None:
    client = TestClient(make_app(gateway), headers={"x-api-key": "secret"})
    on = gateway.replay is not None
    calls = [
        ("GET", f"{SUB}:offsets", "getoffsets_sub"),
        ("POST", f"{SUB}:modifyOffset", "modifyoffset_sub"),
        ("GET", f"{SUB}:timeToOffset?time=2026-12-06T12:00:00.000Z", "time_to_offset_sub"),
    ]
    for method, url, name in calls:
        answer = client.request(method, url, json={"offset": 0})
        error = answer.json()["error"]
        if on:  # no such subscription
            assert answer.status_code == 404, error
        else:
            assert answer.status_code == 501 and f"({name})" in error["message"]
            assert "gateway.retention.enabled" in error["message"]
    paths = client.get("/openapi.json").json()["paths"]
    assert ("/v1/projects/{project}/subscriptions/{sub}:offsets" in paths) is on
