"""Statistics reply parsing and apply planning (no brokers)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from msgbus.errors import NetworkError
from msgbus.network.plan import make_plan
from msgbus.network.stats import parse_map
from msgbus.network.topology import Topology, load_topology, parse_topology

BROKERS = Path(__file__).resolve().parents[3] / "brokers"

# What ActiveMQ 5.17 sent for ActiveMQ.Statistics.Broker (jms-map-json), shortened.
REAL_REPLY = (
    b'{"map":{"entry":[{"string":"averageMessageSize","long":1024},'
    b'{"string":["stomp+ssl",""]},{"string":"enqueueCount","long":4},'
    b'{"string":["brokerName","t1"]},{"string":"minEnqueueTime","double":0},'
    b'{"string":"storePercentUsage","int":0}]}}'
)


def test_parse_real_statistics_reply() -> None:
    assert parse_map(REAL_REPLY) == {
        "averageMessageSize": 1024,
        "stomp+ssl": "",
        "enqueueCount": 4,
        "brokerName": "t1",
        "minEnqueueTime": 0,
        "storePercentUsage": 0,
    }


def test_empty_map_ends_a_list_and_garbage_is_an_error() -> None:
    assert parse_map(b'{"map":""}') == {}
    with pytest.raises(NetworkError, match="not a jms-map-json map"):
        parse_map(b"<map/>")


_key = st.text(alphabet="abcdefXYZ.+_", min_size=1, max_size=12)


@given(
    st.dictionaries(_key, st.one_of(st.integers(-(2**40), 2**40), st.text(max_size=20)), max_size=8)
)
def test_parse_map_reads_xstream_layout(values: dict[str, Any]) -> None:
    entries = [
        {"string": [k, v]} if isinstance(v, str) else {"string": k, "long": v}
        for k, v in values.items()
    ]
    doc: dict[str, Any] = {"map": {"entry": entries[0] if len(entries) == 1 else entries}}
    if not entries:
        doc = {"map": ""}
    assert parse_map(json.dumps(doc).encode()) == values


def _line() -> Topology:
    return load_topology(BROKERS / "line.yaml")


def test_first_apply_adds_every_broker() -> None:
    plan = make_plan(None, _line())
    assert [(s.action, s.broker) for s in plan.steps] == [("add", "a"), ("add", "b"), ("add", "c")]


def test_same_topology_needs_nothing() -> None:
    assert make_plan(_line(), _line()).steps == []


def test_removing_the_end_broker_restarts_its_neighbour_then_drains_it() -> None:
    old = _line()
    new = old.model_copy(update={"brokers": old.brokers[:2], "links": old.links[:1]})
    plan = make_plan(old, new)
    assert [(s.action, s.broker) for s in plan.steps] == [("restart", "b"), ("remove", "c")]
    assert plan.steps[0].reason == "links -b->c"
    assert plan.steps[1].move_to == "b"
    assert "move its queued messages to b" in plan.steps[1].describe()


def test_adding_a_broker_and_link_adds_first_then_restarts_the_link_source() -> None:
    old = _line()
    data = old.model_dump(by_alias=True)
    data["brokers"].append({"name": "d", "ports": {"stomp": 62653, "openwire": 62656}})
    data["links"].append({"from": "c", "to": "d", "ttl": 1})
    plan = make_plan(old, parse_topology(data))
    assert [(s.action, s.broker) for s in plan.steps] == [("add", "d"), ("restart", "c")]
    assert plan.steps[1].reason == "links +c->d"
