"""The gateway's AMS schemas, ACL lists and retry window in memory (FastAPI's TestClient,
no broker: a publish that got past the checks would be a 503, so a 400 or 403 proves
nothing was sent)."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import avro.io
import avro.schema
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from msgbus.config import load_config
from msgbus.gateway.app import make_app
from msgbus.gateway.retries import RetryWindow
from msgbus.gateway.schemas import compile_schema
from msgbus.gateway.service import Gateway
from tests.chaos.harness import probe_text
from tests.fixtures.gateway import HOST, PERSON

BASE = "/v1/projects/grid"


def _app(tmp_path: Path, **settings: Any) -> FastAPI:
    config = load_config(
        overrides={
            "connection": {"brokers": ["stomp://127.0.0.1:1"]},  # nothing listens
            "gateway": {
                "project": "grid",
                "users": {"ops": {"token": "secret"}, "other": {"token": "other"}},
                "state_dir": tmp_path / "state",
                **settings,
            },
        }
    )
    return make_app(Gateway(config))


def _client(tmp_path: Path, **settings: Any) -> TestClient:
    return TestClient(_app(tmp_path, **settings), headers={"x-api-key": "secret"})


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    return _client(tmp_path)


def _b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def _avro(datum: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    avro.io.DatumWriter(avro.schema.parse(json.dumps(HOST))).write(
        datum, avro.io.BinaryEncoder(out)
    )
    return out.getvalue()


def _error(answer: Any) -> str:
    return str(answer.json()["error"]["message"])


def test_schemas_are_created_got_listed_renamed_and_deleted_as_ams_answers(
    client: TestClient, tmp_path: Path
) -> None:
    made = client.post(f"{BASE}/schemas/person", json={"type": "JSON", "schema": PERSON})
    assert made.status_code == 200
    body = made.json()
    assert body["name"] == "projects/grid/schemas/person" and body["type"] == "json"
    assert body["schema"] == PERSON and len(body["uuid"]) == 36
    again = client.post(f"{BASE}/schemas/person", json={"type": "json", "schema": PERSON})
    assert again.status_code == 409
    assert client.get(f"{BASE}/schemas/person").json() == body
    renamed = client.put(
        f"{BASE}/schemas/person", json={"name": "projects/grid/schemas/people"}
    ).json()
    assert renamed == {**body, "name": "projects/grid/schemas/people"}
    assert client.get(f"{BASE}/schemas/person").status_code == 404
    # Kept across a restart.
    restarted = _client(tmp_path)
    assert restarted.get(f"{BASE}/schemas").json() == {"schemas": [renamed]}
    assert restarted.delete(f"{BASE}/schemas/people").status_code == 200
    assert restarted.get(f"{BASE}/schemas").json() == {"schemas": []}


@pytest.mark.parametrize(
    ("kind", "schema", "said"),
    [
        ("json", {"type": "no such type"}, "Invalid JSON Schema"),
        ("avro", {"type": "record", "fields": []}, "Invalid Avro schema"),
        ("avro", {"type": "nonsense"}, "Undefined type"),
        ("avro", {"type": "array", "items": "null"}, "items that take no bytes"),
        (
            "avro",
            {
                "type": "map",
                "values": {"type": "array", "items": {"type": "fixed", "name": "f", "size": 0}},
            },
            "items that take no bytes",
        ),
        ("wlcg", {"messageClass": "Nope"}, "messageClass must be one of"),
        ("xml", {}, "Schema type can only be"),
    ],
)
def test_a_schema_that_is_not_one_is_400_and_not_kept(
    client: TestClient, kind: str, schema: dict[str, Any], said: str
) -> None:
    answer = client.post(f"{BASE}/schemas/bad", json={"type": kind, "schema": schema})
    assert answer.status_code == 400 and said in _error(answer)
    assert client.get(f"{BASE}/schemas/bad").status_code == 404


def test_validate_names_the_field_for_json_avro_and_wlcg(client: TestClient) -> None:
    client.post(f"{BASE}/schemas/person", json={"type": "json", "schema": PERSON})
    client.post(f"{BASE}/schemas/host", json={"type": "avro", "schema": HOST})
    client.post(f"{BASE}/schemas/probe", json={"type": "wlcg", "schema": {}})
    ok = {"message": "Message validated successfully"}
    cases: list[tuple[str, Any, str | None]] = [
        ("person", {"name": "a", "age": 3}, None),
        ("person", {"name": "a", "age": -1}, "Message 0 data is not valid,age: -1 is less than"),
        ("person", {"age": "x"}, "Message 0 data is not valid.1)(root): 'name' is a required"),
        ("host", {"data": _b64(_avro({"hostname": "h", "load": 2}))}, None),
        ("host", {"data": _b64(b"\x02h")}, "Message 0 data is not valid,load: "),
        ("host", {"data": _b64(b"\x02h\x04!")}, "(root): 1 bytes after the datum"),
        ("host", {"data": _b64(b"\x04\xff\xfe")}, "Message 0 data is not valid,hostname: "),
        ("probe", {"data": _b64(probe_text("fine", 1))}, None),
        ("probe", {"data": _b64("metricName: x\nEOT\n")}, "field 'serviceURI'"),
        ("host", {"nodata": 1}, "Invalid Schema Payload"),
    ]
    for name, payload, said in cases:
        answer = client.post(f"{BASE}/schemas/{name}:validate", json=payload)
        if said is None:
            assert (answer.status_code, answer.json()) == (200, ok), payload
        else:
            assert answer.status_code == 400 and said in _error(answer), (payload, _error(answer))
    not_json = client.post(f"{BASE}/schemas/person:validate", content=b"{nope")
    assert "Message 0 data is not valid JSON format" in _error(not_json)


def test_an_attached_schema_refuses_before_sending_and_detaching_lifts_it(
    client: TestClient, tmp_path: Path
) -> None:
    client.put(f"{BASE}/topics/people")
    client.post(f"{BASE}/schemas/person", json={"type": "json", "schema": PERSON})
    ref = {"schema": "projects/grid/schemas/person"}
    assert client.post(f"{BASE}/topics/people:attachSchema", json=ref).status_code == 200
    assert client.get(f"{BASE}/topics/people").json() == {
        "name": "/projects/grid/topics/people",
        **ref,
    }
    good, bad = {"data": _b64('{"name": "a"}')}, {"data": _b64('{"name": 7}')}
    publish = f"{BASE}/topics/people:publish"
    refused = client.post(publish, json={"messages": [good, bad]})
    assert refused.status_code == 400
    assert _error(refused).startswith("Message 1 data is not valid,name: 7 is not of type")
    # The valid request got past every check to the broker (none here: 503).
    assert client.post(publish, json={"messages": [good]}).status_code == 503
    # Kept across a restart; detached, any bytes go.
    restarted = _client(tmp_path)
    assert restarted.post(publish, json={"messages": [bad]}).status_code == 400
    assert restarted.post(f"{BASE}/topics/people:detachSchema").status_code == 200
    assert restarted.post(publish, json={"messages": [bad]}).status_code == 503
    assert "schema" not in restarted.get(f"{BASE}/topics/people").json()


def test_attaching_what_does_not_exist_is_404_and_a_deleted_schema_detaches(
    client: TestClient,
) -> None:
    client.put(f"{BASE}/topics/t")
    missing = {"schema": "projects/grid/schemas/missing"}
    assert client.post(f"{BASE}/topics/t:attachSchema", json=missing).status_code == 404
    assert client.post(f"{BASE}/topics/nope:detachSchema").status_code == 404
    wrong = {"schema": "grid/schemas/x"}
    assert client.post(f"{BASE}/topics/t:attachSchema", json=wrong).status_code == 400
    client.post(f"{BASE}/schemas/host", json={"type": "avro", "schema": HOST})
    client.post(f"{BASE}/topics/t:attachSchema", json={"schema": "projects/grid/schemas/host"})
    client.delete(f"{BASE}/schemas/host")
    assert "schema" not in client.get(f"{BASE}/topics/t").json()


def test_the_configured_wlcg_schema_is_replaced_by_an_attached_one(tmp_path: Path) -> None:
    client = _client(tmp_path, topics={"probes": {"schema": "wlcg"}})
    client.put(f"{BASE}/topics/probes")
    person = {"data": _b64('{"name": "a"}')}
    publish = f"{BASE}/topics/probes:publish"
    assert "serviceURI" in _error(client.post(publish, json={"messages": [person]}))
    client.post(f"{BASE}/schemas/person", json={"type": "json", "schema": PERSON})
    client.post(
        f"{BASE}/topics/probes:attachSchema", json={"schema": "projects/grid/schemas/person"}
    )
    assert client.post(publish, json={"messages": [person]}).status_code == 503
    client.post(f"{BASE}/topics/probes:detachSchema")
    assert client.post(publish, json={"messages": [person]}).status_code == 400


ACL = {
    "users": {
        "ops": {"token": "secret", "groups": ["admins"]},
        "other": {"token": "other", "groups": ["guests"]},
    },
    "permissions": [{"destination": "/topic/ams.>", "write": ["admins"], "admin": ["admins"]}],
}


def test_a_topic_acl_lets_a_listed_user_publish_and_only_an_admin_changes_it(
    tmp_path: Path,
) -> None:
    app = _app(tmp_path, **ACL)
    ops, other = TestClient(app, headers={"x-api-key": "secret"}), TestClient(app)
    other.headers["x-api-key"] = "other"
    ops.put(f"{BASE}/topics/t")
    message = {"messages": [{"data": "eA=="}]}
    assert other.post(f"{BASE}/topics/t:publish", json=message).status_code == 403
    assert ops.get(f"{BASE}/topics/t:acl").json() == {"authorized_users": ["ops"]}
    users = {"authorized_users": ["other"]}
    assert other.post(f"{BASE}/topics/t:modifyAcl", json=users).status_code == 403
    nobody = {"authorized_users": ["nobody"]}
    unknown = ops.post(f"{BASE}/topics/t:modifyAcl", json=nobody)
    assert unknown.status_code == 404 and "nobody" in _error(unknown)
    assert ops.post(f"{BASE}/topics/t:modifyAcl", json=users).status_code == 200
    # Kept across a restart: other's publish now reaches the broker (none here: 503).
    app = _app(tmp_path, **ACL)
    ops, other = TestClient(app, headers={"x-api-key": "secret"}), TestClient(app)
    other.headers["x-api-key"] = "other"
    assert other.get(f"{BASE}/topics/t:acl").json() == {"authorized_users": ["ops", "other"]}
    assert other.post(f"{BASE}/topics/t:publish", json=message).status_code == 503
    ops.post(f"{BASE}/topics/t:modifyAcl", json={"authorized_users": []})
    assert other.post(f"{BASE}/topics/t:publish", json=message).status_code == 403


def test_without_permissions_every_user_is_on_every_acl(client: TestClient) -> None:
    client.put(f"{BASE}/topics/t")
    assert client.get(f"{BASE}/topics/t:acl").json() == {"authorized_users": ["ops", "other"]}
    assert client.get(f"{BASE}/topics/missing:acl").status_code == 404
    assert client.get(f"{BASE}/subscriptions/missing:acl").status_code == 404


def test_metrics_of_what_does_not_exist_are_404_and_of_a_new_topic_zero(
    client: TestClient,
) -> None:
    assert client.get(f"{BASE}/topics/t:metrics").status_code == 404
    client.put(f"{BASE}/topics/t")
    metrics = {m["metric"]: m for m in client.get(f"{BASE}/topics/t:metrics").json()["metrics"]}
    assert metrics["topic.number_of_messages"]["timeseries"][0]["value"] == 0
    assert metrics["topic.number_of_messages"]["resource_name"] == "t"
    node = client.get("/v1/metrics").json()["metrics"]
    assert [m["metric"] for m in node] == ["ams_node.cpu_usage", "ams_node.memory_usage"]
    assert 0 < node[1]["timeseries"][0]["value"] < 100


def test_the_retry_window_gives_a_replayed_message_its_first_id() -> None:
    window = RetryWindow(60)
    request = [(b"a", {"k": "v"}), (b"a", {"k": "v"}), (b"b", {})]
    first = window.assign("/topic/x", request)
    assert len({s.msgbus_id for s in first}) == 3  # equal messages in one request: two
    window.confirmed(first)
    again = window.assign("/topic/x", request)
    assert [s.msgbus_id for s in again] == [s.msgbus_id for s in first]
    assert all(s.confirmed for s in again)
    elsewhere = window.assign("/topic/y", request[:1])
    other_attrs = window.assign("/topic/x", [(b"a", {"k": "w"})])
    assert elsewhere[0].msgbus_id != first[0].msgbus_id != other_attrs[0].msgbus_id
    assert not elsewhere[0].confirmed
    off = RetryWindow(0)
    assert (
        off.assign("/topic/x", request[:1])[0].msgbus_id
        != off.assign("/topic/x", request[:1])[0].msgbus_id
    )


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=64))
def test_any_bytes_get_an_answer_from_every_schema_kind_never_an_exception(data: bytes) -> None:
    checks = [
        compile_schema("json", PERSON),
        compile_schema("avro", HOST),
        compile_schema("avro", {"type": "array", "items": {"type": "map", "values": "double"}}),
        compile_schema("wlcg", {"messageClass": "ProbeResult"}),
    ]
    for check in checks:
        refusal = check(3, data, {})
        assert refusal is None or refusal.startswith("Message 3 data is not valid")
