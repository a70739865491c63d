"""The gateway's HTTP layer in memory (FastAPI's TestClient, no broker): tokens, AMS
error bodies, topic bookkeeping kept across a restart, refusals before any send."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from msgbus.config import load_config
from msgbus.gateway.app import make_app
from msgbus.gateway.authn import subject_dn
from msgbus.gateway.service import Gateway
from msgbus.gateway.unserved import UNSERVED

BASE = "/v1/projects/grid"


def _gateway(tmp_path: Path, **settings: Any) -> Gateway:
    # Port 1: nothing listens; no test here may reach a broker.
    config = load_config(
        overrides={
            "connection": {"brokers": ["stomp://127.0.0.1:1"]},
            "gateway": {
                "project": "grid",
                "users": {"ops": {"token": "secret"}},
                "state_dir": tmp_path / "state",
                **settings,
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
    again_put = client.put(f"{BASE}/topics/probes")
    assert again_put.status_code == 409 and again_put.json()["error"]["status"] == "ALREADY_EXISTS"
    again = TestClient(make_app(_gateway(tmp_path)), headers={"x-api-key": "secret"})
    assert again.get(f"{BASE}/topics").json() == {
        "topics": [{"name": "/projects/grid/topics/probes"}],
        "nextPageToken": "",
        "totalSize": 1,
    }
    assert again.get("/v1/projects/other/topics").status_code == 404


@pytest.mark.parametrize(
    ("message", "said"),
    [
        ({"data": "not base64!"}, "not valid base64"),
        ({"data": 5}, "data"),
        ({"attributes": {"type": 5}}, "attributes"),
    ],
)
def test_a_bad_message_is_400_before_anything_is_sent(
    client: TestClient, message: dict[str, object], said: str
) -> None:
    client.put(f"{BASE}/topics/probes")
    answer = client.post(f"{BASE}/topics/probes:publish", json={"messages": [message]})
    assert answer.status_code == 400 and said in answer.json()["error"]["message"]


def test_a_topic_with_the_wlcg_schema_refuses_an_invalid_body_naming_the_message(
    tmp_path: Path,
) -> None:
    client = TestClient(
        make_app(_gateway(tmp_path, topics={"probes": {"schema": "wlcg"}})),
        headers={"x-api-key": "secret"},
    )
    client.put(f"{BASE}/topics/probes")
    bad = {"data": base64.b64encode(b"metricName: x\nEOT\n").decode()}
    answer = client.post(f"{BASE}/topics/probes:publish", json={"messages": [bad]})
    said = answer.json()["error"]["message"]
    assert answer.status_code == 400 and said.startswith("Message 0 data is not valid,")


def test_a_message_larger_than_max_message_bytes_is_413_and_nothing_is_sent(
    tmp_path: Path,
) -> None:
    client = TestClient(
        make_app(_gateway(tmp_path, max_message_bytes=1024)), headers={"x-api-key": "secret"}
    )
    client.put(f"{BASE}/topics/big")
    small = {"data": base64.b64encode(b"x" * 10).decode()}
    # 1,000 bytes of data and 25 of attribute: over by one.
    large = {"data": base64.b64encode(b"\0" * 1000).decode(), "attributes": {"k" * 5: "v" * 20}}
    answer = client.post(f"{BASE}/topics/big:publish", json={"messages": [small, large]})
    assert answer.status_code == 413
    error = answer.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    assert (
        "message 2 has 1025 bytes" in error["message"] and "max_message_bytes" in error["message"]
    )


def test_topic_lists_page_as_ams_pages_them(client: TestClient) -> None:
    for name in ("c", "a", "b"):
        client.put(f"{BASE}/topics/{name}")
    first = client.get(f"{BASE}/topics", params={"pageSize": 2}).json()
    assert [t["name"][-1] for t in first["topics"]] == ["a", "b"]
    assert first["totalSize"] == 3 and first["nextPageToken"]
    rest = client.get(
        f"{BASE}/topics", params={"pageSize": 2, "pageToken": first["nextPageToken"]}
    ).json()
    assert [t["name"][-1] for t in rest["topics"]] == ["c"] and rest["nextPageToken"] == ""
    # Not digits: pydantic alone took "+0.0" and "5_0" (schemathesis found the first).
    for bad in ({"pageSize": -1}, {"pageSize": "+0.0"}, {"pageSize": "5_0"}, {"pageToken": "%%%"}):
        assert client.get(f"{BASE}/topics", params=bad).status_code == 400
        assert client.get(f"{BASE}/members", params=bad).status_code == 400
    # Flags as AMS (Go's ParseBool) reads them; argo-ams-library sends "True".
    assert client.get("/v1/users", params={"details": "True"}).status_code == 200
    assert client.get("/v1/users", params={"details": "yes"}).status_code == 400


def test_status_and_version_answer_without_a_token(client: TestClient) -> None:
    assert client.get("/v1/status", headers={"x-api-key": ""}).json() == {"status": "ok"}
    assert client.get("/v1/version").json()["release"].startswith("msgbus ")


def test_every_unserved_ams_route_is_a_501_naming_it(client: TestClient) -> None:
    for method, path, what in UNSERVED:
        url = re.sub(r"\{(\w+)(:name)?\}", lambda m: "grid" if m[1] == "project" else "x", path)
        answer = client.request(method, url, json={})
        assert answer.status_code == 501, (method, url)
        error = answer.json()["error"]
        assert error["status"] == "NOT_IMPLEMENTED"
        assert what in error["message"] and f"{method} {url}" in error["message"]


@pytest.mark.parametrize(
    ("push", "why"),
    [
        ({"pushEndpoint": "http://x/push"}, "valid https url"),
        ({"pushEndpoint": "https://x", "retryPolicy": {"type": "never"}}, "Retry policy"),
        ({"pushEndpoint": "https://x", "maxMessages": 0}, "maxMessages"),
        ({"pushEndpoint": "https://x", "authorizationHeader": {"type": "x"}}, "Authorization"),
    ],
)
def test_an_invalid_push_config_is_a_400_and_nothing_is_created(
    client: TestClient, push: dict[str, Any], why: str
) -> None:
    client.put(f"{BASE}/topics/probes")
    body = {"topic": "projects/grid/topics/probes", "pushConfig": push}
    answer = client.put(f"{BASE}/subscriptions/pushed", json=body)
    assert answer.status_code == 400 and why in answer.json()["error"]["message"]
    assert client.get(f"{BASE}/subscriptions/pushed").status_code == 404
    assert client.get(f"{BASE}/subscriptions").json()["subscriptions"] == []


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


@pytest.mark.parametrize("on", [False, True], ids=["off", "on"])
def test_offset_routes_are_501_while_the_retention_log_is_off_and_documented_once_on(
    tmp_path: Path, on: bool
) -> None:
    gateway = _gateway(tmp_path, retention={"enabled": on})
    client = TestClient(make_app(gateway), headers={"x-api-key": "secret"})
    sub = f"{BASE}/subscriptions/s"
    calls = [
        ("GET", f"{sub}:offsets", "getoffsets_sub"),
        ("POST", f"{sub}:modifyOffset", "modifyoffset_sub"),
        ("GET", f"{sub}:timeToOffset?time=2026-12-06T12:00:00.000Z", "time_to_offset_sub"),
    ]
    for method, url, name in calls:
        answer = client.request(method, url, json={"offset": 0})
        error = answer.json()["error"]
        if on:  # served: no such subscription
            assert answer.status_code == 404, error
        else:
            assert answer.status_code == 501 and f"({name})" in error["message"]
            assert "gateway.retention.enabled" in error["message"]
    paths = client.get("/openapi.json").json()["paths"]
    assert ("/v1/projects/{project}/subscriptions/{sub}:offsets" in paths) is on
    gateway.close()
