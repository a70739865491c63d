"""ARGO's AMS clients against ``msgbus gateway``, unmodified: argo-ams-library from PyPI
publishing what argo-nagios-ams-publisher publishes (its ``type`` and
``partition_date`` attributes, an Avro body written with the ``avro`` package and the
publisher's metric_data schema, or its JSON body), pulling it back byte for byte, the
same bytes reaching a STOMP consumer of the topic; attributes AMS takes that STOMP gives
a meaning; the AMS routes the gateway does not serve (501, nothing left behind); paging,
cumulative acknowledgement, pulls that answer at once, and the 413 the library treats as
final."""

from __future__ import annotations

import datetime
import io
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import avro.io
import avro.schema
import pytest
import requests
from argo_ams_library import (  # type: ignore[import-untyped]
    AmsMessage,
    AmsServiceException,
    ArgoMessagingService,
)

from msgbus.stomp.frames import MessageFrame
from msgbus.transport.connection import Connection
from msgbus.transport.url import BrokerURL
from tests.fixtures.gateway import PROJECT, TOKEN, Gateway

pytestmark = pytest.mark.interop

BROKERS = [{}, pytest.param({"broker": "activemq"}, marks=pytest.mark.activemq, id="activemq")]
# argo-nagios-ams-publisher's config/metric_data.avsc, the schema its Avro topics use.
METRIC_DATA = avro.schema.parse(
    json.dumps(
        {
            "namespace": "argo.avro",
            "type": "record",
            "name": "metric_data",
            "fields": [
                {"name": "timestamp", "type": "string"},
                {"name": "service", "type": "string"},
                {"name": "hostname", "type": "string"},
                {"name": "metric", "type": "string"},
                {"name": "status", "type": "string"},
                {"name": "monitoring_host", "type": ["null", "string"]},
                {"name": "actual_data", "type": ["null", "string"], "default": None},
                {"name": "summary", "type": ["null", "string"]},
                {"name": "message", "type": ["null", "string"]},
                {
                    "name": "tags",
                    "type": [
                        "null",
                        {"name": "Tags", "type": "map", "values": ["null", "string"]},
                    ],
                },
            ],
        }
    )
)
ODD_ATTRIBUTES = {
    "type": "metric_data",
    "destination": "/queue/elsewhere",
    "content-length": "0",
    "msgbus-id": "forged",
    "message-id": "ID:forged",
    "subscription": "someone-elses",
    "ack": "7",
    "persistent": "false",
    "ams.attr.type": "looks escaped",
    "": "no name",
    "colon:name": "a:b",
    "line\nbreak": "x\ny\r\nz",
    "back\\slash": "\\c\\n\\\\",
    "nul": "a\0b",
    "partition_date": "2026-12-06",
}


def _names() -> tuple[str, str]:
    """A topic and a subscription of the test's own (ActiveMQ is shared by the session)."""
    tag = uuid.uuid4().hex[:12]
    return f"metrics-{tag}", f"argo-{tag}"


def _metric_result(n: int) -> dict[str, Any]:
    """One result as the publisher's construct_msg assembles it from ams-metric-to-queue."""
    return {
        "timestamp": f"2026-12-06T10:{n:02d}:00Z",
        "service": "webdav",
        "hostname": f"se{n}.example.org",
        "metric": "org.nagios.WebDAV",
        "status": "CRITICAL" if n % 2 else "OK",
        "monitoring_host": "mon.example.org",
        "summary": f"summary #{n}: ünïcode",
        "message": "line one\nline two",
        "actual_data": None if n % 2 else "time=0.1s",
        "tags": {"vofqan": None, "voname": "ops", "roc": "NGI_X", "endpoint_group": "SITE-X"},
    }


def _avro(result: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    avro.io.DatumWriter(METRIC_DATA).write(result, avro.io.BinaryEncoder(out))
    return out.getvalue()


def _as_published(body: bytes | str, result: dict[str, Any]) -> AmsMessage:
    # The publisher's write(): partition_date from the result's timestamp, type = msgtype.
    day = datetime.datetime.strptime(result["timestamp"], "%Y-%m-%dT%H:%M:%SZ")
    attributes = {"partition_date": day.strftime("%Y-%m-%d"), "type": "metric_data"}
    return AmsMessage(attributes=attributes, data=body)


@pytest.fixture
def stomp(ams_gateway: Gateway) -> Iterator[Connection]:
    with Connection(BrokerURL.model_validate(ams_gateway.broker_url)) as conn:
        yield conn


def _stomp_messages(conn: Connection, topic: str, count: int) -> list[MessageFrame]:
    got: list[MessageFrame] = []
    deadline = time.monotonic() + 30
    while len(got) < count and time.monotonic() < deadline:
        frame = conn.receive(1)
        if isinstance(frame, MessageFrame) and frame.headers["destination"].endswith(topic):
            got.append(frame)
    return got


def _pull_all(ams: ArgoMessagingService, sub: str, count: int) -> list[tuple[str, AmsMessage]]:
    got: list[tuple[str, AmsMessage]] = []
    deadline = time.monotonic() + 30
    while len(got) < count and time.monotonic() < deadline:
        got += ams.pull_sub(sub, num=count)
    return got


@pytest.mark.parametrize("ams_gateway", BROKERS, indirect=True)
@pytest.mark.parametrize("encoding", ["avro", "json"])
def test_what_argo_nagios_ams_publisher_publishes_comes_back_byte_for_byte(
    ams_gateway: Gateway, stomp: Connection, encoding: str
) -> None:
    ams = ams_gateway.ams()
    topic, sub = _names()
    stomp.subscribe(f"/topic/ams.{topic}", id="watch")
    ams.create_topic(topic)
    ams.create_sub(sub, topic, ackdeadline=60)
    results = [_metric_result(n) for n in range(5)]
    bodies: list[bytes | str] = [_avro(r) if encoding == "avro" else json.dumps(r) for r in results]
    sent = [_as_published(body, r) for body, r in zip(bodies, results, strict=True)]
    ids = ams.publish(topic, sent)["messageIds"]
    expected = [
        (b if isinstance(b, bytes) else b.encode(), m.get_attr())
        for b, m in zip(bodies, sent, strict=True)
    ]
    got = _pull_all(ams, sub, len(sent))
    assert [m.get_msgid() for _, m in got] == ids
    assert [(m.get_data(), m.get_attr()) for _, m in got] == expected
    if encoding == "avro":  # what ARGO's consumers read from it
        reader = avro.io.DatumReader(METRIC_DATA)
        decoded = [reader.read(avro.io.BinaryDecoder(io.BytesIO(m.get_data()))) for _, m in got]
        assert decoded == results
    ams.ack_sub(sub, [ack_id for ack_id, _ in got])
    frames = _stomp_messages(stomp, topic, len(sent))
    assert [f.body for f in frames] == [body for body, _ in expected]
    assert {f.headers["partition_date"] for f in frames} == {"2026-12-06"}
    assert {f.headers["ams.attr.type"] for f in frames} == {"metric_data"}
    ams.delete_sub(sub)


@pytest.mark.parametrize("ams_gateway", BROKERS, indirect=True)
def test_any_attributes_any_bytes_and_no_data_pass_through_untouched(
    ams_gateway: Gateway, stomp: Connection
) -> None:
    ams = ams_gateway.ams()
    topic, sub = _names()
    stomp.subscribe(f"/topic/ams.{topic}", id="watch")
    ams.create_topic(topic)
    ams.create_sub(sub, topic, ackdeadline=60)
    binary = bytes(range(256)) + b"\0\0\r\n\0"
    smime = b"MIME-Version: 1.0\r\nContent-Type: multipart/signed\r\n\r\n\x00\xff signed"
    messages = [
        AmsMessage(attributes=dict(ODD_ATTRIBUTES), data=binary),
        AmsMessage(attributes={"only": "attributes", "type": "alarm"}),  # no data at all
        AmsMessage(attributes={}, data=smime),
    ]
    ams.publish(topic, messages)
    got = _pull_all(ams, sub, 3)
    assert [m.get_attr() for _, m in got] == [ODD_ATTRIBUTES, messages[1].get_attr(), {}]
    assert got[0][1].get_data() == binary and got[2][1].get_data() == smime
    assert "data" not in got[1][1].dict()  # as AMS answers it: data empty
    ams.ack_sub(sub, [got[-1][0]])
    frames = _stomp_messages(stomp, topic, 3)
    assert [f.body for f in frames] == [binary, b"", smime]
    assert frames[0].headers["destination"] == f"/topic/ams.{topic}"  # not the attribute's
    ams.delete_sub(sub)


def test_offset_routes_and_other_unserved_calls_fail_with_a_clear_501(
    ams_gateway: Gateway,
) -> None:
    ams = ams_gateway.ams()
    ams.create_topic("results")
    ams.create_sub("s", "results")
    calls: dict[str, Callable[[], object]] = {
        "modifyoffset_sub": lambda: ams.modifyoffset_sub("s", 0),
        "time_to_offset_sub": lambda: ams.time_to_offset_sub("s", datetime.datetime(2026, 1, 1)),
        "create_project": lambda: ams.create_project("another", "more"),
        "delete_user": lambda: ams.delete_user("probe"),
    }
    for name, call in calls.items():
        with pytest.raises(AmsServiceException) as refused:
            call()
        assert refused.value.code == 501, name
        assert f"({name})" in refused.value.msg and "nothing was changed" in refused.value.msg
    # The library has no error entry for this route: any answer but 200, 401, 403 and
    # 408 is a KeyError naming the route in it, against AMS too. The 501 is still there.
    for name, call, route in (("getoffsets_sub", lambda: ams.getoffsets_sub("s"), "sub_offsets"),):
        with pytest.raises(KeyError, match=route):
            call()
        path = ams.routes[route][1].format(
            ams_gateway.endpoint, PROJECT, "s" if "sub" in route else "results"
        )
        answer = requests.get(path, headers={"x-api-key": TOKEN}, timeout=10)
        assert answer.status_code == 501 and f"({name})" in answer.json()["error"]["message"]
    assert ams.status() == {"status": "ok"}
    assert ams.version()["release"].startswith("msgbus ")


def test_lists_page_with_page_size_and_token(ams_gateway: Gateway) -> None:
    ams = ams_gateway.ams()
    for n in range(5):
        ams.create_topic(f"t{n}")
        ams.create_sub(f"s{n}", f"t{n}")
    for listing, key in ((ams.list_topics, "topics"), (ams.list_subs, "subscriptions")):
        names: list[str] = []
        token = ""
        while True:
            page = listing(params={"pageSize": 2, "pageToken": token})
            assert page["totalSize"] == 5 and len(page[key]) <= 2
            names += [entry["name"].rsplit("/", 1)[-1] for entry in page[key]]
            token = page["nextPageToken"]
            if not token:
                break
        assert names == [f"{key[0]}{n}" for n in range(5)]


def test_acknowledging_the_highest_ack_id_acknowledges_all_before_it(
    ams_gateway: Gateway,
) -> None:
    ams = ams_gateway.ams()
    ams.create_topic("jobs")
    ams.create_sub("cumulative", "jobs", ackdeadline=1)
    ams.publish("jobs", [AmsMessage(data=f"job {n}") for n in range(3)])
    got = _pull_all(ams, "cumulative", 3)
    ams.ack_sub("cumulative", [got[-1][0]])  # only the last, as AMS documents
    time.sleep(1.5)  # past the deadline: anything not acknowledged would come again
    assert ams.pull_sub("cumulative", num=10, return_immediately=True) == []


def test_a_pull_without_return_immediately_answers_at_once_when_nothing_is_there(
    ams_gateway: Gateway,
) -> None:
    ams = ams_gateway.ams()
    ams.create_topic("quiet")
    ams.create_sub("waiting", "quiet")
    started = time.monotonic()
    assert ams.pull_sub("waiting", num=10) == []
    assert time.monotonic() - started < 2  # AMS answers such a pull at once


@pytest.mark.parametrize("ams_gateway", [{"max_message_bytes": 4096}], indirect=True)
def test_an_oversized_message_is_a_final_413_not_retried(ams_gateway: Gateway) -> None:
    ams = ams_gateway.ams()
    ams.create_topic("big")
    ams.create_sub("watch", "big")
    started = time.monotonic()
    with pytest.raises(AmsServiceException) as refused:
        ams.publish("big", [AmsMessage(data="ok"), AmsMessage(data=b"\0" * 5000)],
                    retry=3, retrysleep=30)  # fmt: skip
    assert refused.value.code == 413 and "message 2 has 5000 bytes" in refused.value.msg
    assert time.monotonic() - started < 20  # final: the library did not sleep and retry
    assert ams.pull_sub("watch", num=5, return_immediately=True) == []  # nothing was sent
