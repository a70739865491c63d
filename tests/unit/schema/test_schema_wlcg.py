"""The WLCG text codec: reading, writing, and precise errors."""

from __future__ import annotations

from typing import Any

import pytest

from msgbus.errors import DecodeError, SchemaError
from msgbus.schema import (
    JobStatusEvent,
    MetricStatus,
    ProbeResult,
    build_message,
    decode_wlcg,
    encode_wlcg,
    read_wlcg,
)


def test_reads_metric_output_text(wlcg_two: str) -> None:
    first, second = decode_wlcg(wlcg_two)
    assert isinstance(first, ProbeResult) and isinstance(second, ProbeResult)
    assert first.detailsData == "Job https://lb.example.org:9000/abc\n  finished: Done (Success)"
    assert first.serviceType == "CREAM-CE"
    assert second.metricStatus is MetricStatus.CRITICAL
    assert second.detailsData is None


def test_bytes_crlf_and_missing_last_eot(wlcg_two: str) -> None:
    crlf = wlcg_two.removesuffix("EOT\n").replace("\n", "\r\n").encode()
    assert decode_wlcg(crlf) == decode_wlcg(wlcg_two)


def test_blank_lines_and_empty_messages_are_skipped(wlcg_two: str) -> None:
    padded = "\n\nEOT\n" + wlcg_two.replace("EOT\n", "EOT\n\n  \n")
    assert decode_wlcg(padded) == decode_wlcg(wlcg_two)


def test_empty_input_has_no_message() -> None:
    assert read_wlcg("") == []
    assert read_wlcg("\n\nEOT\n") == []


def test_a_bom_is_ignored(wlcg_two: str) -> None:
    assert len(decode_wlcg(b"\xef\xbb\xbf" + wlcg_two.encode())) == 2


@pytest.mark.parametrize(
    ("canonical", "variant"),
    [
        ("voName: ops", "voName:ops"),  # no space after the colon
        ("summaryData: OK", "summaryData:OK: all: fine"),  # colons inside the value
        ("voName: ops", "voName:"),  # empty value without the space
    ],
)
def test_heads_off_the_fast_path_read_the_same(wlcg_two: str, canonical: str, variant: str) -> None:
    [probe, _] = decode_wlcg(wlcg_two.replace(canonical, variant, 1))
    [expected, _] = decode_wlcg(wlcg_two.replace(canonical, variant.replace(":", ": ", 1), 1))
    assert probe == expected


def test_value_after_colon_keeps_inner_spacing(wlcg_two: str) -> None:
    [probe, _] = decode_wlcg(wlcg_two.replace("voName: ops", "voName:  ops "))
    assert isinstance(probe, ProbeResult) and probe.voName == " ops "
    [probe, _] = decode_wlcg(wlcg_two.replace("voName: ops", "voName:ops"))
    assert isinstance(probe, ProbeResult) and probe.voName == "ops"


def test_problem_in_second_message_names_message_and_line(wlcg_two: str) -> None:
    text = wlcg_two.replace("timestamp: 2026-03-01T12:31:00Z", "timestamp: yesterday")
    first, second = read_wlcg(text)
    assert first.ok
    [problem] = second.errors
    assert (problem.message_no, problem.line_no, problem.field) == (2, 22, "timestamp")
    assert "YYYY-MM-DDTHH:MM:SSZ" in problem.reason
    with pytest.raises(DecodeError, match=r"message 2, line 22, field 'timestamp'"):
        decode_wlcg(text)


def test_junk_line(wlcg_two: str) -> None:
    text = wlcg_two.replace("hostName: se01.example.org", "this is not a field")
    [problem] = read_wlcg(text)[1].errors
    assert (problem.message_no, problem.line_no, problem.field) == (2, 15, None)
    assert "expected 'key: value' or 'EOT'" in problem.reason


def test_duplicate_key(wlcg_two: str) -> None:
    text = wlcg_two.replace("voName: ops", "voName: ops\nsiteName: OTHER")
    [problem] = read_wlcg(text)[0].errors
    assert (problem.line_no, problem.field) == (11, "siteName")
    assert "first on line 4" in problem.reason


def test_missing_eot_between_messages_is_reported(wlcg_two: str) -> None:
    # After detailsData every line up to EOT is details, so a lost EOT there merges
    # two messages; elsewhere the repeated key gives it away.
    merged = wlcg_two.replace("(Success)\nEOT\n", "(Success)\n", 1)
    [only] = read_wlcg(merged)
    assert only.ok and isinstance(only.message, ProbeResult)
    assert "serviceURI: se01.example.org" in str(only.message.detailsData)
    text2 = wlcg_two.replace("EOT\nserviceURI: se01", "serviceURI: se01", 1).replace(
        "detailsData: Job https://lb.example.org:9000/abc\n  finished: Done (Success)\n", ""
    )
    [bad] = read_wlcg(text2)
    assert bad.errors[0].field == "serviceURI"
    assert "'EOT' line before it missing" in bad.errors[0].reason


def test_valid_messages_around_an_invalid_one(wlcg_two: str) -> None:
    text = wlcg_two + "serviceURI: x\nEOT\n" + wlcg_two
    results = read_wlcg(text)
    assert [r.ok for r in results] == [True, True, False, True, True]
    assert [r.message_no for r in results] == [1, 2, 3, 4, 5]
    assert {e.field for e in results[2].errors} >= {"hostName", "timestamp"}


def test_non_utf8_names_line() -> None:
    with pytest.raises(DecodeError, match=r"line 3: not UTF-8: byte 0xff"):
        decode_wlcg(b"serviceURI: a\nhostName: b\nsiteName: \xff\n")


def test_size_cap() -> None:
    with pytest.raises(DecodeError, match="over the limit of 100 bytes"):
        decode_wlcg(b"x" * 101, max_bytes=100)


def test_round_trip_keeps_unknown_keys_and_order(wlcg_two: str) -> None:
    text = wlcg_two.replace("voName: ops", "voName: ops\nsiteBDII: bdii.example.org")
    messages = decode_wlcg(text)
    assert decode_wlcg(encode_wlcg(messages)) == messages
    lines = encode_wlcg(messages[:1]).splitlines()
    assert lines[0] == "serviceURI: ce01.example.org:8443"
    assert lines[-3:] == [
        "detailsData: Job https://lb.example.org:9000/abc",
        "  finished: Done (Success)",
        "EOT",
    ]
    assert "siteBDII: bdii.example.org" in lines


def test_encode_writes_bool_and_numbers(probe_fields: dict[str, Any]) -> None:
    probe_fields["encrypted"] = True
    probe = build_message(ProbeResult, probe_fields)
    assert "encrypted: yes" in encode_wlcg([probe]).splitlines()


def test_encode_refuses_what_text_cannot_carry(probe_fields: dict[str, Any]) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"nested": {"a": 1}}, "holds dict"),
        ({"nothing": None}, "holds NoneType"),
        ({"multi": "a\nb"}, "spans lines"),
        ({"bad key": "v"}, "cannot be written as WLCG text"),
    ]
    for extra, match in cases:
        probe = build_message(ProbeResult, {**probe_fields, **extra})
        with pytest.raises(SchemaError, match=match):
            encode_wlcg([probe])


def test_other_types_use_the_same_codec() -> None:
    text = (
        "jobId: https://lb.example.org:9000/abc\nstate: DONE\npreviousState: RUNNING\n"
        "timestamp: 2026-03-01T12:00:00Z\nhostName: ce01.example.org\nEOT\n"
    )
    [event] = decode_wlcg(text, JobStatusEvent)
    assert isinstance(event, JobStatusEvent)
    assert encode_wlcg([event]) == text


def test_long_runs_of_cr(wlcg_two: str) -> None:
    # Only CRs right before a line end go; a run elsewhere stays (and is read in linear time).
    runs = "\r" * 200_000
    text = wlcg_two.replace("finished: Done", f"finished:{runs}Done").replace("\n", runs + "\n")
    first, _ = decode_wlcg(text)
    assert isinstance(first, ProbeResult)
    expected = f"Job https://lb.example.org:9000/abc\n  finished:{runs}Done (Success)"
    assert first.detailsData == expected
