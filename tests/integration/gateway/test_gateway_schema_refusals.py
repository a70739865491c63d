"""AMS schemas on ``msgbus gateway`` with the unmodified argo-ams-library publishing:
a JSON Schema and an Avro schema attached to topics pass valid messages to a STOMP
consumer of the topic and refuse an invalid one with AMS's 400 naming message and field,
nothing of that request reaching the broker. argo-ams-library has no schema calls
(1.0.0: no create_schema, attach or validate), so schemas are made with plain HTTP as
AMS documents them."""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import avro.io
import avro.schema
import pytest
import requests
from argo_ams_library import (  # type: ignore[import-untyped]
    AmsMessage,
    AmsServiceException,
)

from msgbus.stomp.frames import MessageFrame
from msgbus.transport.connection import Connection
from msgbus.transport.url import BrokerURL
from tests.fixtures.gateway import HOST, PERSON, PROJECT, TOKEN, Gateway

BROKERS = [{}, pytest.param({"broker": "activemq"}, marks=pytest.mark.activemq, id="activemq")]


def _http(gateway: Gateway, method: str, path: str, body: Any = None) -> Any:
    answer = requests.request(
        method, f"{gateway.url}/v1/projects/{PROJECT}{path}", json=body,
        headers={"x-api-key": TOKEN}, timeout=30,
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    return answer.json()


def _avro(datum: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    avro.io.DatumWriter(avro.schema.parse(json.dumps(HOST))).write(
        datum, avro.io.BinaryEncoder(out)
    )
    return out.getvalue()


@pytest.fixture
def stomp(ams_gateway: Gateway) -> Iterator[Connection]:
    with Connection(BrokerURL.model_validate(ams_gateway.broker_url)) as conn:
        yield conn


def _bodies(conn: Connection, count: int, quiet: float = 2.0) -> list[bytes]:
    """The ``count`` bodies expected (30 s at most), then whatever else comes within a
    ``quiet`` spell: a refused message that reached the broker would be among them."""
    got: list[bytes] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if len(got) >= count:
            deadline = min(deadline, time.monotonic() + quiet)
        frame = conn.receive(0.2)
        if isinstance(frame, MessageFrame):
            got.append(frame.body)
    return got


@pytest.mark.parametrize("ams_gateway", BROKERS, indirect=True)
@pytest.mark.parametrize("kind", ["json", "avro"])
def test_an_attached_schema_passes_valid_messages_and_refuses_an_invalid_one_before_the_broker(
    ams_gateway: Gateway, stomp: Connection, kind: str
) -> None:
    tag = uuid.uuid4().hex[:10]  # the session's ActiveMQ is shared
    topic, schema = f"{kind}-{tag}", f"{kind}-schema-{tag}"
    made = _http(
        ams_gateway, "POST", f"/schemas/{schema}",
        {"type": kind, "schema": PERSON if kind == "json" else HOST},
    )  # fmt: skip
    assert made["name"] == f"projects/{PROJECT}/schemas/{schema}" and made["type"] == kind
    ams = ams_gateway.ams()
    ams.create_topic(topic)
    _http(ams_gateway, "POST", f"/topics/{topic}:attachSchema", {"schema": made["name"]})
    assert _http(ams_gateway, "GET", f"/topics/{topic}")["schema"] == made["name"]
    stomp.subscribe(f"/topic/ams.{topic}", id="watch")
    if kind == "json":
        valid = [json.dumps({"name": f"n{i}", "age": i}).encode() for i in range(3)]
        invalid, said = json.dumps({"name": "x", "age": "old"}).encode(), "age: 'old' is not"
    else:
        valid = [_avro({"hostname": f"h{i}.example.org", "load": i}) for i in range(3)]
        invalid, said = valid[0][:-1], "load: "  # the last field cut short
    with pytest.raises(AmsServiceException) as refused:
        ams.publish(topic, [AmsMessage(data=valid[0]), AmsMessage(data=invalid)])
    assert refused.value.code == 400 and refused.value.status == "INVALID_ARGUMENT"
    assert f"Message 1 data is not valid,{said}" in refused.value.msg
    ids = ams.publish(topic, [AmsMessage(data=body) for body in valid])["messageIds"]
    assert len(ids) == 3
    # Had any of the refused request reached the broker, valid[0] would come first twice.
    assert _bodies(stomp, 3) == valid


@pytest.mark.parametrize("ams_gateway", BROKERS, indirect=True)
def test_a_topic_created_with_a_schema_refuses_an_invalid_message_from_its_first_publish(
    ams_gateway: Gateway, stomp: Connection
) -> None:
    tag = uuid.uuid4().hex[:10]
    schema = _http(
        ams_gateway, "POST", f"/schemas/person-{tag}", {"type": "json", "schema": PERSON}
    )
    ams = ams_gateway.ams()
    # The library's create_topic sends no body: its own do_put sends AMS's.
    url = f"https://{ams.endpoint}/v1/projects/{PROJECT}/topics"
    made = ams.do_put(f"{url}/people-{tag}", json.dumps({"schema": schema["name"]}), "topic_create")
    assert made == {"name": f"/projects/{PROJECT}/topics/people-{tag}", "schema": schema["name"]}
    assert ams.get_topic(f"people-{tag}")["schema"] == schema["name"]
    # The schema's bare name, as AMS's newer documentation gives it.
    ams.do_put(f"{url}/named-{tag}", json.dumps({"schema": f"person-{tag}"}), "topic_create")
    assert ams.get_topic(f"named-{tag}")["schema"] == schema["name"]
    stomp.subscribe(f"/topic/ams.people-{tag}", id="watch")
    with pytest.raises(AmsServiceException) as refused:
        ams.publish(f"people-{tag}", [AmsMessage(data=json.dumps({"age": 3}))])
    assert refused.value.code == 400 and "'name' is a required property" in refused.value.msg
    valid = json.dumps({"name": "ada"}).encode()
    ams.publish(f"people-{tag}", [AmsMessage(data=valid)])
    assert _bodies(stomp, 1) == [valid]  # the refused one never reached the broker
    # A schema that does not exist: a 404, and no topic made without it.
    with pytest.raises(AmsServiceException) as missing:
        ams.do_put(f"{url}/orphan-{tag}", json.dumps({"schema": "nope"}), "topic_create")
    assert missing.value.code == 404 and "Schema doesn't exist" in missing.value.msg
    assert not ams.has_topic(f"orphan-{tag}")
    assert "schema" not in ams.create_topic(f"plain-{tag}")  # no body: no schema, as before
