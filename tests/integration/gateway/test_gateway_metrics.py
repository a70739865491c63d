"""``msgbus gateway``'s AMS metrics and duplicate-free retries, argo-ams-library
publishing and pulling: topic and subscription ``:metrics`` count exactly what was
published and pulled (the library has no call for them: plain HTTP), ``/v1/metrics``
through the library's ``metrics()``, and a publish request replayed after a lost answer
stores its messages once at ``msgbus consume`` and hands them out once to a pull
subscription."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa
from argo_ams_library import AmsMessage  # type: ignore[import-untyped]

from tests.chaos.harness import probe_text
from tests.fixtures.gateway import PROJECT, TOKEN, Gateway, ams_metrics
from tests.fixtures.pipeline import run_msgbus


def _value(metrics: dict[str, Any], name: str) -> Any:
    return metrics[name]["timeseries"][0]["value"]


def test_topic_and_subscription_metrics_count_exactly_what_went_through(
    ams_gateway: Gateway,
) -> None:
    ams = ams_gateway.ams()
    ams.create_topic("counted")
    ams.create_sub("all", "counted", ackdeadline=60)
    ams.create_sub("idle", "counted")
    sent = [probe_text(f"#{i}", i) for i in range(7)]
    for start in (0, 2, 3):  # three requests: 2, 1 and 4 messages
        end = {0: 2, 2: 3, 3: 7}[start]
        ams.publish("counted", [AmsMessage(data=s, attributes={}) for s in sent[start:end]])
    size = sum(len(s.encode()) for s in sent)
    pulled: list[Any] = []
    deadline = time.monotonic() + 30
    while len(pulled) < 7 and time.monotonic() < deadline:
        batch = ams.pull_sub("all", num=5)
        pulled += batch
        if batch:
            ams.ack_sub("all", [ack for ack, _ in batch])
    assert len(pulled) == 7
    topic = ams_metrics(ams_gateway, "/topics/counted")
    assert _value(topic, "topic.number_of_messages") == 7
    assert _value(topic, "topic.number_of_bytes") == size
    assert _value(topic, "topic.number_of_subscriptions") == 2
    assert _value(topic, "topic.number_of_daily_messages") == 7
    assert _value(topic, "topic.publishing_rate") > 0
    sub = ams_metrics(ams_gateway, "/subscriptions/all")
    assert _value(sub, "subscription.number_of_messages") == 7
    assert _value(sub, "subscription.number_of_bytes") == size
    assert _value(sub, "subscription.consumption_rate") > 0
    idle = ams_metrics(ams_gateway, "/subscriptions/idle")
    assert _value(idle, "subscription.number_of_messages") == 0
    node = ams.metrics()["metrics"]
    assert {m["metric"] for m in node} == {"ams_node.cpu_usage", "ams_node.memory_usage"}


def test_a_replayed_publish_request_is_stored_and_pulled_once(
    ams_gateway: Gateway, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'store.db'}"
    assert run_msgbus(["db", "init", "--store", store]).returncode == 0
    consume = ["consume", "--drain", "--broker", ams_gateway.broker_url, "--store", store,
               "--destination", "/topic/ams.retried", "--subscription", "store"]  # fmt: skip
    assert run_msgbus(consume).returncode == 0  # the durable subscription keeps what follows
    ams = ams_gateway.ams()
    ams.create_topic("retried")
    ams.create_sub("pullers", "retried", ackdeadline=60)
    body: dict[str, Any] = {
        "messages": [
            {"attributes": {}, "data": base64.b64encode(probe_text(f"r{i}", 5).encode()).decode()}
            for i in range(5)
        ]
    }
    url = f"{ams_gateway.url}/v1/projects/{PROJECT}/topics/retried:publish"
    # The same request again, as a client sends it when the first answer was lost.
    answers = [
        requests.post(url, json=body, headers={"x-api-key": TOKEN}, timeout=30) for _ in range(2)
    ]
    assert [a.status_code for a in answers] == [200, 200]
    first, again = (a.json()["messageIds"] for a in answers)
    assert first == again and len(set(first)) == 5
    done = run_msgbus(consume)
    assert done.returncode == 0 and "stored 5" in done.stdout, done.stdout
    engine = sa.create_engine(store)
    try:
        with engine.connect() as db:
            rows = db.execute(sa.text("SELECT msg_id FROM probe_results")).scalars().all()
    finally:
        engine.dispose()
    assert sorted(rows) == sorted(first)
    pulled: list[Any] = []
    deadline = time.monotonic() + 30
    while len(pulled) < 5 and time.monotonic() < deadline:
        pulled += ams.pull_sub("pullers", num=10)
    time.sleep(0.5)  # a duplicate, had one been sent, is here by now
    pulled += ams.pull_sub("pullers", num=10, return_immediately=True)
    assert sorted(m.get_msgid() for _, m in pulled) == sorted(first)
