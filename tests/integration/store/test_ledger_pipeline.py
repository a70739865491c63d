"""The completeness ledger end to end, as users run it: ``msgbus publish`` through a proxy
that silently drops messages 100-109 in flight (the broker confirms the transaction
around them), ``msgbus consume`` into the database, ``msgbus audit`` naming the range."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypedDict

import pytest
import sqlalchemy as sa

from msgbus.broker import BrokerConfig, BrokerLimits, BrokerThread
from msgbus.stomp import Frame
from msgbus.stomp.headers import (
    EPOCH_HEADER,
    ID_HEADER,
    PRODUCER_HEADER,
    SYNC_HEADER,
    read_number,
)
from msgbus.transport.connection import Connection
from msgbus.transport.url import BrokerURL
from tests.chaos.harness import probe_text
from tests.fixtures.pipeline import run_msgbus
from tests.fixtures.proxy import TcpProxy

pytestmark = pytest.mark.postgres


@pytest.fixture
def broker_port(embedded_or_activemq: str) -> int:
    """The STOMP port of an embedded broker or of the session's ActiveMQ."""
    return BrokerURL.model_validate(embedded_or_activemq).port


def _in_flight(first: int, last: int) -> Callable[[Frame], bool]:
    def drop(frame: Frame) -> bool:
        number = read_number(frame.headers)
        return frame.command == "SEND" and number is not None and first <= number[2] <= last

    return drop


def _publish(
    tmp_path: Path,
    url: str,
    destination: str,
    n: int,
    tag: str,
    *,
    timestamp: str | None = None,
    pack: int = 1,
    oversized: list[int] | None = None,
    wire: str = "compact",
) -> None:
    """``n`` results; those at ``oversized`` positions carry 100 KiB of details, which
    the broker refuses. ``wire``: publisher.wire."""
    path = tmp_path / f"{tag}.txt"
    big = oversized or []
    text = "".join(probe_text(f"{tag} #{i}", 100_000 if i in big else 10) for i in range(n))
    if timestamp is not None:
        text = text.replace("timestamp: 2026-12-01T00:00:00Z", f"timestamp: {timestamp}")
    path.write_text(text)
    spool = str(tmp_path / "spool")
    args = ["publish", "--spool", spool, "--broker", url, "--destination", destination]
    env = {"MSGBUS_PUBLISHER__WIRE": wire}
    done = run_msgbus([*args, "--pack", str(pack), str(path)], env=env)
    confirmed = f"{n - len(big)} confirmed"
    assert done.returncode == (1 if big else 0) and confirmed in done.stdout, done.stdout


def _consume(url: str, destination: str, store: str) -> None:
    done = run_msgbus(
        ["consume", "--drain", "--broker", url, "--destination", destination, "--store", store]
    )
    assert done.returncode == 0, done.stdout


def _select(store: str, sql: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(store)
    try:
        with engine.connect() as db:
            return [tuple(row) for row in db.execute(sa.text(sql))]
    finally:
        engine.dispose()


class _Gap(TypedDict):
    first: int
    last: int
    site: str


class _Stale(TypedDict):
    site: str
    metric: str
    interval: float


class _Report(TypedDict):
    """The fields of ``msgbus audit --json`` (AuditReport.as_json) these tests read."""

    producers: int
    received: int
    missing: int
    skipped: int
    gaps: list[_Gap]
    stale: list[_Stale]


def _audit(store: str) -> tuple[int, _Report]:
    done = run_msgbus(["audit", "--store", store, "--json"])
    return done.returncode, json.loads(done.stdout)


def test_messages_lost_in_flight_are_reported_with_their_range(
    tmp_path: Path, postgres_url: str, tcp_proxy: Callable[..., TcpProxy], broker_port: int
) -> None:
    assert run_msgbus(["db", "init", "--store", postgres_url]).returncode == 0
    destination = f"/queue/ledger.test.{tmp_path.name}"
    url = f"stomp://127.0.0.1:{broker_port}"
    lossy = tcp_proxy(broker_port, drop=_in_flight(100, 109))
    _publish(tmp_path, f"stomp://127.0.0.1:{lossy.port}", destination, 150, "first")
    assert lossy.dropped == 10
    _consume(url, destination, postgres_url)
    code, report = _audit(postgres_url)
    assert code == 1
    [gap] = report["gaps"]
    assert (gap["first"], gap["last"], gap["site"]) == (100, 109, "CHAOS-SITE")
    assert (report["missing"], report["received"]) == (10, 140)
    # A second run (same spool, same producer) continues the numbering: no new gap,
    # and its redelivered duplicates do not disturb the ledger.
    _publish(tmp_path, url, destination, 20, "second")
    _consume(url, destination, postgres_url)
    _consume(url, destination, postgres_url)
    code, report = _audit(postgres_url)
    assert [(g["first"], g["last"]) for g in report["gaps"]] == [(100, 109)]
    assert (report["missing"], report["received"], report["producers"]) == (10, 160, 1)


def test_messages_lost_before_a_runs_last_are_named_by_it(
    tmp_path: Path, postgres_url: str, tcp_proxy: Callable[..., TcpProxy], broker_port: int
) -> None:
    assert run_msgbus(["db", "init", "--store", postgres_url]).returncode == 0
    destination = f"/queue/ledger.tail.{tmp_path.name}"
    lossy = tcp_proxy(broker_port, drop=_in_flight(46, 49))
    _publish(tmp_path, f"stomp://127.0.0.1:{lossy.port}", destination, 50, "tail")
    _consume(f"stomp://127.0.0.1:{broker_port}", destination, postgres_url)
    code, report = _audit(postgres_url)
    assert code == 1
    assert [(g["first"], g["last"]) for g in report["gaps"]] == [(46, 49)]


def test_losing_a_runs_last_message_is_named_when_its_producer_next_publishes(
    tmp_path: Path, postgres_url: str, tcp_proxy: Callable[..., TcpProxy], broker_port: int
) -> None:
    # The end of a run rides on its last message (no message of its own, which other
    # consumers would take for data): lost with it, the loss shows at the next number.
    assert run_msgbus(["db", "init", "--store", postgres_url]).returncode == 0
    url, destination = f"stomp://127.0.0.1:{broker_port}", f"/queue/ledger.end.{tmp_path.name}"
    lossy = tcp_proxy(broker_port, drop=_in_flight(46, 50))
    _publish(tmp_path, f"stomp://127.0.0.1:{lossy.port}", destination, 50, "tail")
    _consume(url, destination, postgres_url)
    code, report = _audit(postgres_url)
    assert (code, report["gaps"], report["received"]) == (0, [], 45)  # nothing tells yet
    _publish(tmp_path, url, destination, 3, "next")  # the next cron run, same spool
    _consume(url, destination, postgres_url)
    code, report = _audit(postgres_url)
    assert code == 1
    assert [(g["first"], g["last"]) for g in report["gaps"]] == [(46, 50)]


def test_an_older_publishers_sync_record_still_ends_its_run_and_is_not_stored(
    tmp_path: Path, postgres_url: str, tcp_proxy: Callable[..., TcpProxy], broker_port: int
) -> None:
    # The record as publishers before end-of-run headers sent it at close, for a run
    # whose last five messages were lost past the broker.
    assert run_msgbus(["db", "init", "--store", postgres_url]).returncode == 0
    url, destination = f"stomp://127.0.0.1:{broker_port}", f"/queue/ledger.old.{tmp_path.name}"
    lossy = tcp_proxy(broker_port, drop=_in_flight(46, 50))
    _publish(tmp_path, f"stomp://127.0.0.1:{lossy.port}", destination, 50, "old")
    _consume(url, destination, postgres_url)
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as db:
            producer, epoch = db.execute(
                sa.text("SELECT producer, epoch FROM ledger_producers")
            ).one()
        record = {"producer": producer, "epoch": epoch, "last": 50, "skipped": [[48, 48]]}
        headers = {
            SYNC_HEADER: "1",
            PRODUCER_HEADER: producer,
            EPOCH_HEADER: str(epoch),
            ID_HEADER: "old-publisher-sync-1",
            "content-type": "application/json",
        }
        with Connection(BrokerURL.model_validate(url)) as conn:
            conn.send(destination, json.dumps(record).encode(), headers)
        _consume(url, destination, postgres_url)
        with engine.connect() as db:
            stored = db.execute(sa.text("SELECT count(*) FROM probe_results")).scalar_one()
            dead = db.execute(sa.text("SELECT count(*) FROM dead_letters")).scalar_one()
    finally:
        engine.dispose()
    code, report = _audit(postgres_url)
    assert (stored, dead) == (45, 0)
    assert (code, report["skipped"]) == (1, 1)
    assert [(g["first"], g["last"]) for g in report["gaps"]] == [(46, 47), (49, 50)]


def test_numbers_given_up_on_are_skipped_not_missing(tmp_path: Path, postgres_url: str) -> None:
    """Messages over the broker's frame limit are refused (``msgbus publish`` says so):
    one inside a run is told by that run's last message, a run's last one by the next
    run's last; the audit counts them skipped, never missing."""
    assert run_msgbus(["db", "init", "--store", postgres_url]).returncode == 0
    limits = BrokerLimits(max_frame_bytes=64 * 1024)
    with BrokerThread(BrokerConfig(port=0, limits=limits)) as broker:
        url, destination = broker.url, f"/queue/ledger.skipped.{tmp_path.name}"
        runs = [(30, [9]), (5, [4]), (3, [])]  # sizes, and which results are too large
        expected: list[tuple[int, list[_Gap], int]] = [(0, [], 1), (0, [], 1), (0, [], 2)]
        for (n, big), (code, gaps, skipped) in zip(runs, expected, strict=True):
            _publish(tmp_path, url, destination, n, f"run{n}", oversized=big)
            _consume(url, destination, postgres_url)
            got, report = _audit(postgres_url)
            assert (got, report["gaps"], report["skipped"]) == (code, gaps, skipped), report
        assert (report["received"], report["missing"]) == (36, 0)


def test_nothing_lost_is_nothing_reported(
    tmp_path: Path, postgres_url: str, broker_port: int
) -> None:
    assert run_msgbus(["db", "init", "--store", postgres_url]).returncode == 0
    url, destination = f"stomp://127.0.0.1:{broker_port}", f"/queue/ledger.whole.{tmp_path.name}"
    _publish(tmp_path, url, destination, 30, "whole")
    _consume(url, destination, postgres_url)
    code, report = _audit(postgres_url)
    assert (code, report["gaps"], report["received"], report["missing"]) == (0, [], 30, 0)


def test_packed_bodies_are_stored_whole_and_a_lost_one_is_named(
    tmp_path: Path, postgres_url: str, tcp_proxy: Callable[..., TcpProxy], broker_port: int
) -> None:
    # 95 results in bodies of 10 (the last of 5): body 3 is dropped in flight.
    assert run_msgbus(["db", "init", "--store", postgres_url]).returncode == 0
    destination = f"/queue/ledger.packed.{tmp_path.name}"
    lossy = tcp_proxy(broker_port, drop=_in_flight(3, 3))
    _publish(tmp_path, f"stomp://127.0.0.1:{lossy.port}", destination, 95, "packed", pack=10)
    assert lossy.dropped == 1
    _consume(f"stomp://127.0.0.1:{broker_port}", destination, postgres_url)
    rows = _select(postgres_url, "SELECT msg_id, message FROM probe_results")
    stored = sorted(json.loads(message)["summaryData"] for _, message in rows)
    assert stored == sorted(f"packed #{i}" for i in [*range(20), *range(30, 95)])
    assert len({msg_id for msg_id, _ in rows}) == 9  # one message per body

    code, report = _audit(postgres_url)
    assert code == 1 and [(g["first"], g["last"]) for g in report["gaps"]] == [(3, 3)]


def test_a_site_whose_probes_stop_is_stale_within_twice_its_interval(
    tmp_path: Path, postgres_url: str, broker_port: int
) -> None:
    assert run_msgbus(["db", "init", "--store", postgres_url]).returncode == 0
    url, destination = f"stomp://127.0.0.1:{broker_port}", f"/queue/ledger.stale.{tmp_path.name}"
    interval = 6.0  # long beside the commands' own run time, short for a test
    for beat in range(2):  # a probe every 6 s, then it stops
        last_beat = time.time()
        stamp = datetime.fromtimestamp(last_beat, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        _publish(tmp_path, url, destination, 1, f"beat{beat}", timestamp=stamp)
        if beat == 0:
            time.sleep(interval - (time.time() - last_beat))
    _consume(url, destination, postgres_url)
    assert time.time() - last_beat < 2 * interval - 1, "too slow to see it fresh first"
    code, report = _audit(postgres_url)
    assert (code, report["stale"]) == (0, [])
    while not report["stale"] and time.time() - last_beat < 2 * interval + 3:
        time.sleep(0.5)
        code, report = _audit(postgres_url)
    noticed = time.time() - last_beat
    [series] = report["stale"]
    assert (code, series["site"], series["metric"]) == (1, "CHAOS-SITE", "org.sam.CE-JobSubmit")
    # Timestamps have whole seconds: the learned interval is 6 +- 1 s, and the series
    # shows stale once silent for twice that (plus an audit's run time).
    assert 5 <= series["interval"] <= 7 and noticed <= 2 * interval + 3


def test_legacy_and_compact_numbering_share_one_ledger_and_store_once(
    tmp_path: Path, postgres_url: str, tcp_proxy: Callable[..., TcpProxy], broker_port: int
) -> None:
    # An older publisher's three numbering headers, then this one's single header on
    # the same producer and epoch (one spool): each loses messages in flight.
    assert run_msgbus(["db", "init", "--store", postgres_url]).returncode == 0
    url, destination = f"stomp://127.0.0.1:{broker_port}", f"/queue/ledger.wire.{tmp_path.name}"
    forms: list[bool] = []  # per SEND seen: numbered the legacy way?

    def lossy(first: int, last: int) -> TcpProxy:
        in_flight = _in_flight(first, last)

        def drop(frame: Frame) -> bool:
            if frame.command == "SEND":
                forms.append(PRODUCER_HEADER in frame.headers)
            return in_flight(frame)

        return tcp_proxy(broker_port, drop=drop)

    for wire, n, (first, last) in (("legacy", 30, (10, 12)), ("compact", 20, (35, 36))):
        proxy = lossy(first, last)
        _publish(tmp_path, f"stomp://127.0.0.1:{proxy.port}", destination, n, wire, wire=wire)
        assert proxy.dropped == last - first + 1
    assert forms == [True] * 30 + [False] * 20
    _consume(url, destination, postgres_url)
    _consume(url, destination, postgres_url)  # nothing left: stored once
    [(stored,)] = _select(postgres_url, "SELECT count(*) FROM probe_results")
    code, report = _audit(postgres_url)
    assert (code, stored, report["producers"], report["received"]) == (1, 45, 1, 45)
    assert [(g["first"], g["last"]) for g in report["gaps"]] == [(10, 12), (35, 36)]
    assert (report["missing"], report["skipped"]) == (5, 0)
