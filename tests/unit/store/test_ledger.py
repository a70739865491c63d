"""The ledger in the store (SQLite) and what msgbus audit reads from it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from msgbus.store.audit import audit, audit_metrics
from msgbus.store.database import Store, StoredMessage
from msgbus.store.ledger import LedgerBatch, SyncRecord
from tests.unit.store.conftest import make_probe

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(f"sqlite:///{tmp_path / 'store.db'}")
    s.init()
    return s


def _arrivals(*seqs: int, producer: str = "p1", site: str = "SITE-A") -> LedgerBatch:
    key = (producer, 7)
    return LedgerBatch(numbers={key: list(seqs)}, origins={key: (site, "h1", "/queue/q")})


def test_gaps_open_close_and_survive_redeliveries_across_batches(store: Store) -> None:
    store.write([], ledger=_arrivals(*range(1, 100)), received_at=NOW)
    store.write([], ledger=_arrivals(*range(110, 121)), received_at=NOW)
    store.write([], ledger=_arrivals(105, 50, 50), received_at=NOW + timedelta(minutes=1))
    report = audit(store, now=NOW)
    assert [(g.first, g.last) for g in report.gaps] == [(100, 104), (106, 109)]
    # Both pieces were noticed when the whole gap was, not when it was split.
    assert {g.detected_at for g in report.gaps} == {NOW}
    assert (report.missing, report.received, report.producers) == (9, 111, 1)  # 50 twice
    assert report.gaps[0].site == "SITE-A" and report.gaps[0].destination == "/queue/q"


def test_sync_records_unsequenced_and_sites(store: Store) -> None:
    store.write([], ledger=_arrivals(1, 2), received_at=NOW)
    sync = SyncRecord("p1", 7, last=6, skipped=((4, 4),))
    store.write(
        [],
        ledger=LedgerBatch(
            numbers={("p2", 1): [2]},
            origins={("p2", 1): ("SITE-B", "h2", None)},
            syncs=[sync],
            unsequenced=3,
        ),
        received_at=NOW,
    )
    report = audit(store, now=NOW)
    assert [(g.producer, g.first, g.last) for g in report.gaps] == [
        ("p1", 3, 3),
        ("p1", 5, 6),
        ("p2", 1, 1),
    ]
    assert (report.skipped, report.unsequenced) == (1, 3)
    only_b = audit(store, now=NOW, site="SITE-B")
    assert [(g.producer, g.first) for g in only_b.gaps] == [("p2", 1)]
    text = _textfile(store)
    assert 'msgbus_audit_missing_messages{site="SITE-A"} 3.0' in text
    assert 'msgbus_audit_missing_messages{site="SITE-B"} 1.0' in text
    assert "msgbus_audit_unsequenced_messages 3.0" in text


def _textfile(store: Store) -> str:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "audit.prom"
        audit_metrics(audit(store, now=NOW)).write_textfile(path)
        return path.read_text()


def _result(metric: str, at: datetime, host: str = "h1") -> StoredMessage:
    stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    probe = make_probe(metricName=metric, timestamp=stamp, hostName=host)
    return StoredMessage(f"{metric}-{host}-{at.timestamp()}", 1, probe)


def test_series_silent_beyond_twice_their_interval_are_stale(store: Store) -> None:
    every_5m = [_result("m.five", NOW - timedelta(minutes=m)) for m in (30, 25)]
    recent = [_result("m.fresh", NOW - timedelta(minutes=m)) for m in (6, 1)]
    once = [_result("m.once", NOW - timedelta(hours=3))]
    store.write(every_5m + recent + once, received_at=NOW)
    stale = audit(store, now=NOW).stale
    assert [(s.metric, s.interval, round(s.silent_for)) for s in stale] == [("m.five", 300, 1500)]
    # A configured interval wins over the learned one; one result alone is stale by it.
    configured = audit(store, now=NOW, expect={"m.*": 3600}).stale
    assert [s.metric for s in configured] == ["m.once"]
