"""Numbering and the end of a run: the last message of each destination's stream carries
the run's end (its number as the last, the numbers given up on) in headers; no other
message does, and no message of its own is made for it."""

from __future__ import annotations

from pathlib import Path

from msgbus.numbering import parse_ranges
from msgbus.publish import Envelope, Spool
from msgbus.publish.sequence import HeldBack, MemoryStreams, Sequencer, Stream
from msgbus.stomp.headers import (
    EPOCH_HEADER,
    LAST_HEADER,
    PRODUCER_HEADER,
    SEQ_HEADER,
    SKIPPED_HEADER,
    read_number,
)


def _numbered(sequencer: Sequencer, *destinations: str) -> list[Envelope]:
    return list(sequencer.stamp(iter([Envelope(d, b"x") for d in destinations])))


def test_the_last_message_states_its_number_and_the_skips_known_once() -> None:
    seq = Sequencer(MemoryStreams())
    envs = _numbered(seq, *["/queue/a"] * 6)
    for refused in (envs[1], envs[2], envs[4]):
        seq.skip([refused])
    end = seq.end(envs[5])
    assert (end.headers[LAST_HEADER], end.headers[SKIPPED_HEADER]) == ("6", "2-3,5")
    number = read_number(end.headers)
    assert (end.msgbus_id, end.body, number and number[2]) == (envs[5].msgbus_id, b"x", 6)
    # Told once: the next run's end does not repeat them.
    later = seq.end(_numbered(seq, "/queue/a")[0])
    assert later.headers[LAST_HEADER] == "7" and SKIPPED_HEADER not in later.headers


def test_skips_told_by_an_end_that_did_not_go_are_told_by_the_next() -> None:
    seq = Sequencer(MemoryStreams())
    envs = _numbered(seq, *["/queue/a"] * 3)
    seq.skip([envs[0]])
    end = seq.end(envs[2])
    seq.skip([end])  # refused itself, or neither delivered nor spooled
    nxt = seq.end(_numbered(seq, "/queue/a")[0])
    assert (nxt.headers[LAST_HEADER], nxt.headers[SKIPPED_HEADER]) == ("4", "1,3")


def test_many_skips_are_told_a_bounded_header_at_a_time() -> None:
    seq = Sequencer(MemoryStreams())
    envs = _numbered(seq, *["/queue/a"] * 3001)
    seq.skip(envs[:3000:2])  # 1500 separate ranges: too many for one header
    told = []
    end = seq.end(envs[-1])
    while SKIPPED_HEADER in end.headers:
        assert len(end.headers[SKIPPED_HEADER]) <= 2048
        told += parse_ranges(end.headers[SKIPPED_HEADER]) or []
        end = seq.end(_numbered(seq, "/queue/a")[0])
    assert len(told) > 1 and told == [(n, n) for n in range(1, 3000, 2)]


def test_only_streams_this_publisher_numbered_are_ended() -> None:
    seq = Sequencer(MemoryStreams())
    numbered = {PRODUCER_HEADER: "p", "msgbus-epoch": "1", SEQ_HEADER: "9"}
    foreign = Envelope("/queue/a", b"x", numbered)
    [same] = list(seq.stamp(iter([foreign])))
    assert seq.end(same) is same and LAST_HEADER not in same.headers


def test_held_back_keeps_each_destinations_last_and_the_order() -> None:
    envs = [Envelope(d, str(i).encode()) for i, d in enumerate("abab" + "a")]
    held = HeldBack(iter(envs))
    assert [e.body for e in held] == [b"0", b"1", b"2"]
    assert {d: e.body for d, e in held.last.items()} == {"a": b"4", "b": b"3"}


def test_with_a_spool_a_later_run_tells_the_skips_an_earlier_one_could_not(
    tmp_path: Path,
) -> None:
    # A cron'd run whose last message was refused: the next run (another process,
    # the same spool) tells it, and a third has nothing left to tell.
    ends = []
    for run in range(3):
        with Spool(tmp_path, 1 << 20) as spool:
            seq = Sequencer(spool)
            envs = _numbered(seq, "/queue/a", "/queue/a")
            end = seq.end(envs[-1])
            if run == 0:
                seq.skip([end])
            ends.append(end.headers.get(SKIPPED_HEADER))
    assert ends == [None, "2", None]


def test_without_ends_nothing_given_up_is_kept_to_tell() -> None:
    for ends, kept in ((True, [(1, 2)]), (False, [])):  # False: publisher.sync: false
        store = MemoryStreams()
        seq = Sequencer(store, ends=ends)
        envs = _numbered(seq, "/queue/a", "/queue/a")
        seq.skip(envs)
        number = read_number(envs[0].headers)
        assert number is not None
        stream = Stream(number[0], number[1])
        assert store.take_skipped(stream) == kept


def test_compact_numbering_is_one_header_and_legacy_three_of_the_same_stream() -> None:
    store = MemoryStreams()
    compact = _numbered(Sequencer(store), "/queue/a")[0]
    legacy = _numbered(Sequencer(store, compact=False), "/queue/a")[0]
    assert {k for k in compact.headers if k.startswith("msgbus-")} == {SEQ_HEADER}
    assert {k for k in legacy.headers if k.startswith("msgbus-")} == {
        PRODUCER_HEADER,
        EPOCH_HEADER,
        SEQ_HEADER,
    }
    first, second = read_number(compact.headers), read_number(legacy.headers)
    assert first is not None and second is not None
    assert first[:2] == second[:2] and (first[2], second[2]) == (1, 2)


def test_a_legacy_numbered_message_from_an_older_spool_ends_its_run() -> None:
    # Spooled by an older msgbus (three headers), drained and ending a run by this one.
    store = MemoryStreams()
    seq = Sequencer(store, compact=False)
    [old] = _numbered(seq, "/queue/a")
    [same] = list(Sequencer(store).stamp(iter([old])))
    assert same is old  # not numbered twice
    end = seq.end(old)
    assert end.headers[LAST_HEADER] == old.headers[SEQ_HEADER] == "1"
