"""Packed bodies: up to ``pack`` messages of one type per body, bounded in bytes, read
back by the consumer's decoder as the same messages with a matching recordCount."""

from __future__ import annotations

from pathlib import Path

import pytest

from msgbus.config import load_config
from msgbus.errors import ConfigError
from msgbus.publish import Publisher, Spool
from msgbus.publish.packing import MAX_PACKED_BYTES, pack_bodies
from msgbus.schema import JobStatusEvent, Message, decode_body, encode_body
from msgbus.schema.body import Format
from tests.fixtures.results import numbered


def _items(messages: list[Message], fmt: Format) -> list[tuple[Message, bytes]]:
    return [(m, encode_body(m, fmt)[0]) for m in messages]


@pytest.mark.parametrize("fmt", ["wlcg", "json"])
def test_bodies_of_up_to_pack_messages_decode_to_the_same_messages(fmt: Format) -> None:
    results: list[Message] = [numbered(i) for i in range(25)]
    bodies = list(pack_bodies(_items(results, fmt), fmt, 10))
    assert [h["recordCount"] for _, h in bodies] == ["10", "10", "5"]
    decoded = [d.message for body, headers in bodies for d in decode_body(body, headers)]
    assert decoded == results
    # A packed body cannot carry one message's selector headers.
    assert all("metricName" not in h for _, h in bodies)


def test_one_message_per_body_keeps_its_selector_headers() -> None:
    bodies = list(pack_bodies(_items([numbered(1), numbered(2)], "wlcg"), "wlcg", 1))
    assert [h["metricName"] for _, h in bodies] == ["m1", "m2"]
    assert [h["recordCount"] for _, h in bodies] == ["1", "1"]


def test_a_change_of_message_type_starts_a_new_body() -> None:
    job = JobStatusEvent.model_validate(
        {"jobId": "j1", "state": "RUNNING", "hostName": "ce", "timestamp": "2026-01-01T00:00:00Z"}
    )
    messages: list[Message] = [numbered(1), numbered(2), job, numbered(3)]
    bodies = list(pack_bodies(_items(messages, "wlcg"), "wlcg", 10))
    assert [(h["messageClass"], h["recordCount"]) for _, h in bodies] == [
        ("ProbeResult", "2"),
        ("JobStatusEvent", "1"),
        ("ProbeResult", "1"),
    ]


def test_a_body_stays_under_the_byte_bound() -> None:
    big = [
        numbered(i).model_copy(update={"detailsData": "x" * (MAX_PACKED_BYTES // 5)})
        for i in range(12)
    ]
    bodies = list(pack_bodies(_items(list(big), "wlcg"), "wlcg", 1000))
    assert all(len(body) <= MAX_PACKED_BYTES for body, _ in bodies[:-1])
    assert sum(int(h["recordCount"]) for _, h in bodies) == 12 and len(bodies) >= 3


def test_the_report_and_the_counters_count_messages_not_bodies(tmp_path: Path) -> None:
    # No broker at all: everything goes to the spool, packed.
    config = load_config(
        overrides={
            "connection": {"brokers": ["stomp://127.0.0.1:1"]},
            "publisher": {"spool_dir": tmp_path / "spool", "retry_for": 0, "pack": 10},
        }
    )
    with Publisher(config) as pub:
        report = pub.publish([numbered(i) for i in range(25)])
        stats = pub.stats()
    assert report.spooled == 25 and stats["spooled"] == 25
    assert stats["spool_messages"] == 3  # bodies waiting
    with Spool(tmp_path / "spool", 1 << 20) as spool:
        assert [m.envelope.records for m in spool.peek(10)] == [10, 10, 5]


def test_pack_is_bounded_in_the_configuration() -> None:
    with pytest.raises(ConfigError, match="pack"):
        load_config(overrides={"publisher": {"pack": 0}})
