"""The gateway's retention log (SQLite, no broker): offsets per topic from 0, AMS's bounds,
a message delivered again kept once, time to offset, and what the retention drops: only
what is outside every limit given and acknowledged by every subscription."""

from __future__ import annotations

from pathlib import Path

import pytest

from msgbus.config import GatewayRetention
from msgbus.gateway.retention import Bounds, RetentionLog, offset_of
from msgbus.stomp.frames import MessageFrame

HOUR_MS = 3600 * 1000


def _frames(start: int, count: int, stamp: int | None = None) -> list[MessageFrame]:
    extra = {} if stamp is None else {"timestamp": str(stamp)}
    return [
        MessageFrame({"msgbus-id": f"id-{n}", "subscription": "s1", **extra}, b"x" * 100)
        for n in range(start, start + count)
    ]


def _log(tmp_path: Path, **limits: float | int) -> RetentionLog:
    return RetentionLog(tmp_path / "retention.db", GatewayRetention.model_validate(limits))


def test_offsets_count_from_0_per_topic_and_a_redelivered_message_keeps_its_first(
    tmp_path: Path,
) -> None:
    log = _log(tmp_path)
    assert log.bounds("t") == Bounds(0, 0)
    assert log.append("t", _frames(0, 3), 1000) == 3
    assert log.append("t", _frames(2, 3), 1000) == 2  # id-2 came again: kept once
    assert log.append("u", _frames(0, 1), 1000) == 1
    # Its second offset (3) stays unused: a gap, which only a redelivery leaves.
    assert log.bounds("t") == Bounds(0, 6) and log.bounds("u") == Bounds(0, 1)
    read = log.read("t", 1, 10)
    assert [offset_of(f) for f in read] == [1, 2, 4, 5]
    assert [f.headers["msgbus-id"] for f in read] == ["id-1", "id-2", "id-3", "id-4"]
    assert "subscription" not in read[0].headers  # the delivery's, not the message's
    assert read[0].headers["timestamp"] == "1000"  # the time it came: replays show the same


def test_time_to_offset_is_the_first_message_published_then_or_later(tmp_path: Path) -> None:
    log = _log(tmp_path)
    log.append("t", _frames(0, 2, stamp=5000), 9000)  # the broker's timestamp wins
    log.append("t", _frames(2, 2), 7000)
    assert log.time_to_offset("t", 0) == 0
    assert log.time_to_offset("t", 5001) == 2
    assert log.time_to_offset("t", 7001) is None


def test_a_new_subscription_starts_at_the_end_and_keeps_its_offset(tmp_path: Path) -> None:
    log = _log(tmp_path)
    log.append("t", _frames(0, 4), 1000)
    assert log.current("s", "t") == 4
    log.set_current("s", 1)
    log.close()
    assert _log(tmp_path).current("s", "t") == 1


@pytest.mark.parametrize(
    ("limits", "kept"),
    [
        ({"max_messages": 3}, 3),
        ({"max_bytes": 3 * 150}, 3),  # each: 100 bytes of body, 39-45 of headers (JSON)
        ({"max_age": 1.0}, 1),  # the last one, published now
    ],
)
def test_the_retention_drops_only_what_every_subscription_acknowledged(
    tmp_path: Path, limits: dict[str, float | int], kept: int
) -> None:
    log = _log(tmp_path, **limits)
    log.current("s", "t")  # from 0
    log.append("t", _frames(0, 10), 1000)
    assert log.bounds("t") == Bounds(0, 10)  # outside the limits, but not acknowledged
    log.set_current("s", 6)
    later = 1000 + 2 * HOUR_MS
    log.append("t", _frames(10, 1), later)
    assert log.bounds("t") == Bounds(6, 11)
    log.set_current("s", 11)
    log.append("t", [], later + 500)  # pruned at most once a second
    assert log.bounds("t") == Bounds(6, 11)
    log.append("t", [], later + 1000)
    assert log.bounds("t") == Bounds(11 - kept, 11)


def test_a_topic_forgotten_starts_again_from_0_for_its_subscriptions(tmp_path: Path) -> None:
    log = _log(tmp_path)
    log.append("t", _frames(0, 3), 1000)
    log.current("s", "t")
    log.forget_topic("t")
    assert log.bounds("t") == Bounds(0, 0) and log.current("s", "t") == 0
    log.forget_sub("s")
    log.append("t", _frames(0, 1), 1000)
    assert log.current("s", "t") == 1  # new again: at the end
