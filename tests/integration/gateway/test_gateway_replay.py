"""AMS replay (``gateway.retention``) driven by the unmodified argo-ams-library, on the
embedded broker and on ActiveMQ: a consumer that lost its database goes back with
``:modifyOffset`` or ``:timeToOffset`` and gets exactly the messages from there on, those
published over STOMP straight to the broker included, across a gateway restart too, and
while the broker is away."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from argo_ams_library import (  # type: ignore[import-untyped]
    AmsMessage,
    AmsServiceException,
    ArgoMessagingService,
)

from tests.fixtures.gateway import TOKEN, Gateway, publish_over_stomp, start_gateway
from tests.fixtures.pipeline import EmbeddedBroker, wait_until
from tests.fixtures.pki import Pki

RETAINED = {"retention": {"enabled": True}}
BROKERS = [
    RETAINED,
    pytest.param({**RETAINED, "broker": "activemq"}, marks=pytest.mark.activemq, id="activemq"),
]


def _consume(ams: ArgoMessagingService, sub: str, count: int) -> list[str]:
    """Pull and acknowledge until ``count`` came (then one more pull finds nothing):
    the bodies, in order."""
    got: list[str] = []
    deadline = time.monotonic() + 60
    while len(got) < count and time.monotonic() < deadline:
        got += [m.get_data().decode() for m in ams.pullack_sub(sub, num=count - len(got))]
    assert ams.pull_sub(sub, num=10, return_immediately=True) == []
    return got


def _publish(ams: ArgoMessagingService, topic: str, bodies: list[str]) -> None:
    ams.publish(topic, [AmsMessage(data=b, attributes={"n": b}) for b in bodies])


@pytest.mark.parametrize("ams_gateway", BROKERS, indirect=True)
def test_a_consumer_that_lost_its_database_replays_by_offset_and_by_time(
    ams_gateway: Gateway,
) -> None:
    ams = ams_gateway.ams()
    ams.create_topic("results")
    ams.create_sub("store", "results", ackdeadline=60)
    first, second = [f"#{i}" for i in range(50)], [f"#{i}" for i in range(50, 100)]
    _publish(ams, "results", first)
    wait_until(lambda: ams.getoffsets_sub("store", "max") == 50, 30, "the first 50 in the log")
    time.sleep(0.05)
    middle = datetime.now(timezone.utc).replace(tzinfo=None)  # the library sends it as UTC
    time.sleep(0.05)
    _publish(ams, "results", second)
    database = _consume(ams, "store", 100)
    assert database == first + second
    assert ams.getoffsets_sub("store") == {"min": 0, "max": 100, "current": 100}

    database.clear()  # lost: back to the oldest offset kept
    ams.modifyoffset_sub("store", ams.getoffsets_sub("store", "min"))
    assert ams.getoffsets_sub("store", "current") == 0
    assert _consume(ams, "store", 100) == first + second

    offset = ams.time_to_offset_sub("store", middle)
    assert offset == 50
    ams.modifyoffset_sub("store", offset)
    assert _consume(ams, "store", 50) == second
    assert ams.getoffsets_sub("store", "current") == 100

    with pytest.raises(AmsServiceException) as refused:
        ams.modifyoffset_sub("store", 101)
    assert refused.value.code == 400 and "Offset out of bounds" in refused.value.msg
    with pytest.raises(AmsServiceException) as late:
        ams.time_to_offset_sub("store", middle + timedelta(days=1))
    assert late.value.code == 409 and "out of bounds" in late.value.msg
    assert late.value.status == "CONFLICT"  # AMS's word here, not ALREADY_EXISTS


@pytest.mark.parametrize("ams_gateway", BROKERS, indirect=True)
def test_messages_published_over_stomp_are_replayed_too_after_a_gateway_restart(
    ams_gateway: Gateway, tmp_path: Path, pki: Pki
) -> None:
    ams = ams_gateway.ams()
    ams.create_topic("mixed")
    ams.create_sub("readers", "mixed", ackdeadline=60)
    _publish(ams, "mixed", ["over AMS #1"])
    publish_over_stomp(ams_gateway, "mixed", tmp_path, "over STOMP #1", "over STOMP #2")
    wait_until(lambda: ams.getoffsets_sub("readers", "max") == 3, 30, "3 messages in the log")
    _publish(ams, "mixed", ["over AMS #2"])
    got = _consume(ams, "readers", 4)
    summaries = [b.split("\n")[6] for b in got[1:3]]
    assert [got[0], got[3]] == ["over AMS #1", "over AMS #2"]
    assert summaries == ["summaryData: over STOMP #1", "summaryData: over STOMP #2"]

    ams_gateway.process.stop()  # the retention log and the offsets are in state_dir
    section = {"users": {"probe": {"token": TOKEN}}, "push_ca": str(pki.ca), **RETAINED}
    again = start_gateway(tmp_path, pki, ams_gateway.broker_url, section)
    try:
        ams = again.ams()
        assert ams.getoffsets_sub("readers") == {"min": 0, "max": 4, "current": 4}
        ams.modifyoffset_sub("readers", 1)
        assert _consume(ams, "readers", 3) == got[1:]
    finally:
        again.process.stop()


def _refused(call: Callable[[], object]) -> AmsServiceException:
    with pytest.raises(AmsServiceException) as refused:
        call()
    return refused.value


def _unless_503(call: Callable[[], object]) -> bool:
    """``call`` done; False on a 503 (the broker, or the log's link to it, not back yet)."""
    try:
        call()
    except AmsServiceException as exc:
        assert exc.code == 503, exc.msg
        return False
    return True


def test_the_log_serves_a_replay_while_the_broker_is_away(
    embedded_broker_process: Callable[..., EmbeddedBroker],
    tmp_path: Path,
    pki: Pki,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Offsets are positions in the log: with the broker killed, a consumer still reads
    them, moves them and replays what the log kept; what only the broker could answer
    (a pull past the log's end, a time after its last message) is a 503 to retry, not
    an empty answer or a 409. After the restart the subscription goes on."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki.ca))
    broker = embedded_broker_process()
    section = {"users": {"probe": {"token": TOKEN}}, **RETAINED}
    gateway = start_gateway(tmp_path, pki, broker.stomp_url, section)
    try:
        ams = gateway.ams()
        ams.create_topic("results")
        ams.create_sub("store", "results", ackdeadline=60)
        _publish(ams, "results", [f"#{i}" for i in range(10)])
        wait_until(lambda: ams.getoffsets_sub("store", "max") == 10, 30, "10 in the log")
        time.sleep(0.05)
        middle = datetime.now(timezone.utc).replace(tzinfo=None)
        time.sleep(0.05)
        _publish(ams, "results", [f"#{i}" for i in range(10, 20)])
        assert _consume(ams, "store", 20) == [f"#{i}" for i in range(20)]

        broker.kill()
        assert ams.getoffsets_sub("store") == {"min": 0, "max": 20, "current": 20}
        assert _refused(lambda: ams.pull_sub("store", return_immediately=True)).code == 503
        late = middle + timedelta(days=1)
        assert _refused(lambda: ams.time_to_offset_sub("store", late)).code == 503
        ams.modifyoffset_sub("store", ams.time_to_offset_sub("store", middle))
        replayed = ams.pullack_sub("store", num=20, return_immediately=True)
        assert [m.get_data().decode() for m in replayed] == [f"#{i}" for i in range(10, 20)]
        assert _refused(lambda: _publish(ams, "results", ["lost?"])).code == 503

        broker.start()
        wait_until(
            lambda: _unless_503(lambda: _publish(ams, "results", ["after"])),
            60,
            "a publish after the restart",
        )
        # The log's own link may still be backing off: a pull is a 503 to retry until then.
        got: list[str] = []

        def pull() -> None:
            got.extend(m.get_data().decode() for m in ams.pullack_sub("store", num=10))

        wait_until(lambda: _unless_503(pull) and bool(got), 60, "the message after the restart")
        assert got == ["after"]
        assert ams.pull_sub("store", num=10, return_immediately=True) == []
    finally:
        gateway.process.stop()
