"""The ledger's arithmetic: whatever arrives, in any order and any number of times, the
gaps are exactly the numbers that did not."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from msgbus.numbering import Numbering, merge_ranges


def test_a_hole_is_reported_and_late_arrivals_close_it() -> None:
    n = Numbering()
    n.record(range(1, 100))
    n.record(range(110, 121))
    assert (n.high, n.gaps, n.missing) == (120, [(100, 109)], 10)
    n.record([105, 100, 109])
    assert n.gaps == [(101, 104), (106, 108)]
    n.record(range(1, 121))  # redeliveries of everything change nothing but the holes
    assert (n.gaps, n.high) == ([], 120)


def test_a_sync_record_shows_the_last_messages_lost_and_skips_the_given_up() -> None:
    n = Numbering()
    n.record(range(1, 11))
    n.announce(15, skipped=[(12, 12)])
    assert (n.gaps, n.skipped, n.missing) == ([(11, 11), (13, 15)], 1, 4)
    n.announce(12)  # an older sync record does not move the high-water mark back
    assert n.high == 15


@given(
    st.integers(1, 300).flatmap(
        lambda size: st.tuples(
            st.just(size),
            st.lists(st.integers(1, size), max_size=2 * size),
            st.lists(st.integers(1, size), max_size=5),
            st.booleans(),
        )
    )
)
def test_gaps_are_exactly_what_never_arrived(case: tuple[int, list[int], list[int], bool]) -> None:
    size, arrived, skipped, synced = case
    n = Numbering()
    new = 0
    for start in range(0, len(arrived), 7):  # batches, with repeats, in any order
        new += n.record(arrived[start : start + 7])
    assert new == len(set(arrived))
    if synced:
        n.announce(size, merge_ranges(skipped))
    high = size if synced else max(arrived, default=0)
    expected = set(range(1, high + 1)) - set(arrived)
    if synced:
        expected -= set(skipped)
    assert n.high == high
    assert merge_ranges(expected) == n.gaps
    assert n.skipped == (len(set(skipped) - set(arrived)) if synced else 0)
