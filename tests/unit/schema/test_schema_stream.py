"""Reading inputs of any size piece by piece gives what reading them whole gives."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from msgbus.schema import ProbeResult, encode_json, encode_wlcg
from msgbus.schema.jsoncodec import read_json
from msgbus.schema.stream import read_stream
from msgbus.schema.validation import Decoded
from msgbus.schema.wlcg import read_wlcg
from tests.unit.schema.test_schema_properties import no_deadline, probe_results

BAD_WLCG = "hostName: h\nmetricStatus: MAYBE\nEOT\n"


def _outcome(results: list[Decoded]) -> list[tuple[int | None, object, str]]:
    return [(r.message_no, r.message, r.reason) for r in results]


@no_deadline
@given(
    st.lists(st.one_of(probe_results, st.just(BAD_WLCG)), max_size=8),
    st.integers(min_value=50, max_value=400),
)
def test_wlcg_in_pieces_reads_as_whole(items: list[object], piece_bytes: int) -> None:
    text = "".join(i if isinstance(i, str) else encode_wlcg([i]) for i in items)  # type: ignore[list-item]
    streamed = list(read_stream(io.BytesIO(text.encode()), ProbeResult, piece_bytes=piece_bytes))
    assert _outcome(streamed) == _outcome(read_wlcg(text, ProbeResult))


@no_deadline
@given(st.lists(probe_results, max_size=6), st.booleans())
def test_json_list_and_lines_read_element_by_element(
    messages: list[ProbeResult], lines: bool
) -> None:
    if lines:
        text = "".join(encode_json([m]) + "\n" for m in messages)
    else:
        text = encode_json(messages) if messages else "[]"
    streamed = list(read_stream(io.BytesIO(text.encode()), ProbeResult))
    assert [r.message for r in streamed] == messages
    if not lines:
        assert [r.message for r in read_json(text, ProbeResult)] == messages


@pytest.mark.parametrize("piece_bytes", [100, 10**6])
def test_a_message_over_the_limit_is_one_error_and_the_rest_is_read(piece_bytes: int) -> None:
    good = encode_wlcg([_probe()])
    huge = "hostName: h\ndetailsData: " + "x" * 5000 + "\nEOT\n"
    text = (good + huge + good).encode()
    source = io.BytesIO(text)
    results = list(read_stream(source, ProbeResult, max_bytes=2000, piece_bytes=piece_bytes))
    assert [r.message_no for r in results] == [1, 2, 3]
    assert results[0].ok and results[2].ok
    where = f"message 2, line {good.count(chr(10)) + 1}"
    assert f"{where}: a message over the limit of 2000 bytes" in results[1].reason


def test_a_bad_json_element_names_its_line() -> None:
    text = '[\n{"hostName": "h"},\n' + json.dumps(json.loads(encode_json([_probe()]))) + "\n]"
    first, second = read_stream(io.BytesIO(text.encode()), ProbeResult)
    assert not first.ok and "line 2" in first.reason and second.ok


def test_input_is_read_lazily() -> None:
    """A 17 MB input (20,000 results) is not read whole before the first message."""
    record = encode_wlcg([_probe()]).encode()
    source = io.BytesIO(record * 20_000)
    assert len(source.getvalue()) > 16 * 2**20
    first = next(read_stream(source, ProbeResult))
    assert first.ok and source.tell() < 2 * 2**20


def _probe() -> ProbeResult:
    return ProbeResult.model_validate(
        {
            "serviceURI": "ce1.example.org",
            "hostName": "ce1.example.org",
            "serviceFlavour": "CE",
            "siteName": "S",
            "metricStatus": "OK",
            "metricName": "m",
            "summaryData": "ok",
            "detailsData": "d" * 700,
            "timestamp": "2026-01-01T00:00:00Z",
        }
    )
