"""The ledger's arithmetic: whatever arrives, in any order and any number of times, the
gaps are exactly the numbers that did not."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from msgbus.numbering import Numbering, coalesce, format_ranges, merge_ranges, parse_ranges


def test_a_hole_is_reported_and_late_arrivals_close_it() -> None:
    n = Numbering()
    n.record(range(1, 100))
    n.record(range(110, 121))
    assert (n.high, n.gaps, n.missing) == (120, [(100, 109)], 10)
    n.record([105, 100, 109])
    assert n.gaps == [(101, 104), (106, 108)]
    n.record(range(1, 121))  # redeliveries of everything change nothing but the holes
    assert (n.gaps, n.high) == ([], 120)


def test_the_end_of_a_run_shows_the_last_messages_lost_and_skips_the_given_up() -> None:
    n = Numbering()
    n.record(range(1, 11))
    n.announce(15, skipped=[(12, 12)])
    assert (n.gaps, n.skipped, n.missing) == ([(11, 11), (13, 15)], 1, 4)
    n.announce(12)  # an older end of a run does not move the high-water mark back
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


_RANGES = st.lists(st.tuples(st.integers(1, 10**12), st.integers(0, 10**6))).map(
    lambda pairs: coalesce((first, first + length) for first, length in pairs)
)


@given(_RANGES)
def test_skipped_ranges_survive_the_header_text(ranges: list[tuple[int, int]]) -> None:
    text = format_ranges(ranges)
    assert parse_ranges(text) == ranges
    assert text.isascii() and "\n" not in text and ":" not in text  # a STOMP header value


@given(st.text(max_size=40))
def test_header_text_is_ranges_or_refused_never_an_exception(text: str) -> None:
    parsed = parse_ranges(text)
    if parsed is not None:
        assert all(0 < first <= last for first, last in parsed)
        assert parse_ranges(format_ranges(parsed)) == parsed


def test_malformed_ranges_are_refused() -> None:
    for text in ["1-", "-3", "5-3", "0", "1,,2", "a", "1-2-3", "\u0663", " 1"]:
        assert parse_ranges(text) is None, text
    assert parse_ranges("") == []
    assert parse_ranges("12,40-45") == [(12, 12), (40, 45)]


def test_overlapping_and_adjacent_ranges_coalesce() -> None:
    assert coalesce([(4, 9), (1, 2), (3, 5), (12, 12), (11, 11)]) == [(1, 9), (11, 12)]
