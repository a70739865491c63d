"""The gateway's HTTP layer in memory (FastAPI's TestClient, no broker): tokens, AMS
error bodies, topic bookkeeping kept across a restart, refusals before any send."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from msgbus.config import load_config
from msgbus.gateway.app import make_app
from msgbus.gateway.authn import subject_dn
from msgbus.gateway.service import Gateway

BASE = "/v1/projects/grid"


def _gateway(tmp_path: Path) -> Gateway:
    # Port 1: nothing listens; no test here may reach a broker.
    config = load_config(
        overrides={
            "connection": {"brokers": ["stomp://127.0.0.1:1"]},
            "gateway": {
                "project": "grid",
                "users": {"ops": {"token": "secret"}},
                "state_dir": tmp_path / "state",
            },
        }
    )
    return Gateway(config)


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    return TestClient(make_app(_gateway(tmp_path)), headers={"x-api-key": "secret"})


def test_no_token_or_a_wrong_one_is_401_with_an_ams_error_body(client: TestClient) -> None:
    for headers in ({"x-api-key": ""}, {"x-api-key": "guess"}):
        answer = client.put(f"{BASE}/topics/t", headers=headers)
        assert answer.status_code == 401
        assert answer.json()["error"]["status"] == "UNAUTHORIZED"
    assert client.put(f"{BASE}/topics/t", params={"key": "secret"}).status_code == 200


def test_topics_are_created_once_and_kept_across_a_restart(
    client: TestClient, tmp_path: Path
) -> None:
    assert client.put(f"{BASE}/topics/probes").json() == {"name": "/projects/grid/topics/probes"}
    assert client.put(f"{BASE}/topics/probes").status_code == 409
    again = TestClient(make_app(_gateway(tmp_path)), headers={"x-api-key": "secret"})
    assert again.get(f"{BASE}/topics").json() == {
        "topics": [{"name": "/projects/grid/topics/probes"}]
    }
    assert again.get("/v1/projects/other/topics").status_code == 404


@pytest.mark.parametrize(
    ("message", "said"),
    [
        ({"data": "not base64!"}, "not valid base64"),
        ({"data": base64.b64encode(b"metricName: x\nEOT\n").decode()}, "message 1"),
        ({"data": "", "attributes": {"destination": "/queue/elsewhere"}}, "reserved"),
        ({"attributes": {}}, "data"),
    ],
)
def test_a_bad_message_is_400_before_anything_is_sent(
    client: TestClient, message: dict[str, object], said: str
) -> None:
    client.put(f"{BASE}/topics/probes")
    answer = client.post(f"{BASE}/topics/probes:publish", json={"messages": [message]})
    assert answer.status_code == 400 and said in answer.json()["error"]["message"]


def test_json_without_a_content_type_is_read_as_argo_ams_library_sends_it(
    client: TestClient,
) -> None:
    answer = client.post(
        f"{BASE}/topics/missing:publish", content=b'{"messages": [{"data": "eA=="}]}'
    )
    assert answer.status_code == 404 and answer.json()["error"]["status"] == "NOT_FOUND"


def test_a_certificate_subject_becomes_an_rfc4514_dn() -> None:
    subject = ((("countryName", "UK"),), (("organizationName", "eScience"),),
               (("commonName", "probe"),))  # fmt: skip
    assert subject_dn({"subject": subject}) == "CN=probe,O=eScience,C=UK"
