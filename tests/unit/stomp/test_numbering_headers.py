"""The numbering headers a consumer's ledger reads: the compact ``msgbus-seq`` value
(producer/epoch/n) and the legacy three headers name the same producer, epoch, number."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from msgbus.errors import LocalProtocolError
from msgbus.stomp import FrameParser, serialize
from msgbus.stomp.frames import Frame, SendFrame
from msgbus.stomp.headers import (
    EPOCH_HEADER,
    PRODUCER_HEADER,
    SEQ_HEADER,
    compact_number,
    read_number,
)

# Any text a client may give ("/" included) that a header can carry.
producers = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=80)
numbers = st.integers(min_value=0, max_value=2**63 - 1)


@given(producers, numbers, numbers)
def test_compact_and_legacy_numbering_read_back_alike(producer: str, epoch: int, seq: int) -> None:
    compact = {SEQ_HEADER: compact_number(producer, epoch, seq)}
    legacy = {PRODUCER_HEADER: producer, EPOCH_HEADER: str(epoch), SEQ_HEADER: str(seq)}
    assert read_number(compact) == read_number(legacy) == (producer, epoch, seq)


@given(producers, numbers, numbers)
def test_compact_numbering_survives_the_wire(producer: str, epoch: int, seq: int) -> None:
    frame = SendFrame({"destination": "/queue/a", SEQ_HEADER: compact_number(producer, epoch, seq)})
    for version in ("1.0", "1.1", "1.2"):
        try:
            wire = serialize(frame, version)
        except LocalProtocolError:
            continue  # a producer id this version cannot carry (1.0 has no escapes)
        [parsed] = FrameParser(role="server", version=version).feed(wire)
        assert isinstance(parsed, Frame) and read_number(parsed.headers) == (producer, epoch, seq)


@given(st.dictionaries(st.sampled_from([SEQ_HEADER, PRODUCER_HEADER, EPOCH_HEADER]), st.text()))
def test_any_header_values_read_without_error(headers: dict[str, str]) -> None:
    # What another client sends is not trusted: unnumbered, never an exception.
    number = read_number(headers)
    assert number is None or (number[0] and number[1] >= 0 and number[2] >= 0)


def test_what_is_not_a_number_is_unnumbered() -> None:
    for headers in (
        {},
        {SEQ_HEADER: "7"},  # legacy without its producer
        {SEQ_HEADER: "/1/7"},  # compact without a producer
        {SEQ_HEADER: "p/1/x"},
        {SEQ_HEADER: "p/²/7"},  # a digit int() refuses
        {PRODUCER_HEADER: "p", EPOCH_HEADER: "1", SEQ_HEADER: "p/1/7"},  # mixed forms
    ):
        assert read_number(headers) is None, headers
