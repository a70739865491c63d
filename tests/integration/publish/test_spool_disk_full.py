"""The spool on a full disk (issue 24, finding 5), on a real small disk (tmpfs): what fits
is kept, the rest is counted and reported naming the disk, and a drain that cannot mark
what it delivered stops instead of sending the whole spool again at every run."""

from __future__ import annotations

import collections
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from msgbus.broker import BrokerThread
from msgbus.config import MsgbusConfig, load_config
from msgbus.errors import SpoolFull
from msgbus.publish import Envelope, Publisher, Spool
from msgbus.transport.connection import Connection
from msgbus.transport.url import BrokerURL
from tests.fixtures.disk import SmallDisk

BODY = b"r" * 600
"""About a spool page per six messages: a few hundred fill the room left below."""
ROOM = 256 * 1024


def _config(spool: Path, *brokers: str) -> MsgbusConfig:
    return load_config(
        overrides={
            "connection": {"brokers": list(brokers) or ["stomp://127.0.0.1:1"]},
            "publisher": {"spool_dir": spool, "retry_for": 0.2},
        }
    )


def _full_spool(small_disk: Callable[[int], SmallDisk], n: int) -> tuple[SmallDisk, Path, int]:
    """A spool whose disk filled while ``n`` messages went to it (no broker): returns the
    disk, the spool and how many it kept."""
    disk = small_disk(1024 * 1024)
    disk.fill(room=ROOM)
    spool = disk.path / "spool"
    with Publisher(_config(spool)) as pub:
        report = pub.send([Envelope("/queue/x", BODY) for _ in range(n)])
    assert 0 < report.spooled < n
    assert report.spooled + report.failed == n
    with pytest.raises(SpoolFull, match=r"neither delivered nor spooled: the disk holding"):
        report.raise_for_failures()
    with Spool(spool, 1 << 30) as s:
        assert len(s) == report.spooled
    return disk, spool, report.spooled


def test_a_full_disk_keeps_a_prefix_and_counts_the_rest(
    small_disk: Callable[[int], SmallDisk],
) -> None:
    disk, spool, kept = _full_spool(small_disk, 1000)
    with Spool(spool, 1 << 30) as s:
        # In order, and all of the first chunk that fitted: halving found the prefix.
        assert [m.envelope.body for m in s.peek(kept + 1)] == [BODY] * kept
        with pytest.raises(SpoolFull, match="is full"):
            s.remove([m.envelope.msgbus_id for m in s.peek(kept)])
        assert len(s) == kept  # a failed write leaves the rows as they were
    disk.free()
    with Spool(spool, 1 << 30) as s:
        assert s.add([Envelope("/queue/x", BODY) for _ in range(500)]) == 500
        assert len(s) == kept + 500


def _received(url: str, destination: str) -> collections.Counter[str]:
    """msgbus-ids on ``destination`` (a queue), until nothing comes for 2 s."""
    conn = Connection(BrokerURL.model_validate(url))
    conn.connect()
    seen: collections.Counter[str] = collections.Counter()
    try:
        conn.subscribe(destination, id="t", ack="auto")
        while frame := conn.receive(2):
            seen[frame.headers["msgbus-id"]] += 1
    finally:
        conn.close()
    return seen


def test_a_drain_that_cannot_mark_progress_stops(
    small_disk: Callable[[int], SmallDisk], embedded_broker: BrokerThread
) -> None:
    destination = f"/queue/test.spool.{uuid.uuid4().hex[:8]}"
    disk = small_disk(1024 * 1024)
    disk.fill(room=ROOM)
    spool = disk.path / "spool"
    with Publisher(_config(spool)) as pub:
        report = pub.send([Envelope(destination, BODY) for _ in range(1000)])
    kept = report.spooled
    assert kept > 100, report
    for _ in range(3):  # the disk still full: each drain sends at most its first message
        with Publisher(_config(spool, embedded_broker.url)) as pub:
            drained = pub.drain()
        assert (drained.drained, drained.remaining, drained.unmarked) == (0, kept, 1)
        assert isinstance(drained.error, SpoolFull)
        assert "stopped draining: 1 message(s) a broker took" in str(drained.error)
    # New messages cannot join the spool, but the broker that took the drain's one gets them.
    with Publisher(_config(spool, embedded_broker.url)) as pub:
        fresh = pub.send([Envelope(destination, BODY) for _ in range(10)])
    assert (fresh.confirmed, fresh.spooled, fresh.failed) == (10, 0, 0)
    disk.free()
    with Publisher(_config(spool, embedded_broker.url)) as pub:
        drained = pub.drain()
    assert (drained.drained, drained.remaining, drained.error) == (kept, 0, None)
    seen = _received(embedded_broker.url, destination)
    assert len(seen) == kept + 10  # every message kept arrived; none of the others did
    assert sum(seen.values()) - len(seen) <= 4  # the one each drain on the full disk sent
