"""The body API: headers out, one result per message in, never an exception."""

from __future__ import annotations

import json
from typing import Any

import pytest

from msgbus.errors import DecodeError, SchemaError
from msgbus.schema import (
    JobStatusEvent,
    ProbeResult,
    TransferEvent,
    build_message,
    decode_body,
    encode_body,
    format_of,
)
from msgbus.schema.body import body_headers


@pytest.fixture
def probe(probe_fields: dict[str, Any]) -> ProbeResult:
    return build_message(ProbeResult, probe_fields)


def test_single_message_headers_carry_selectors(probe: ProbeResult) -> None:
    body, headers = encode_body(probe)
    assert headers == {
        "content-type": "text/plain; charset=utf-8",
        "messageClass": "ProbeResult",
        "recordCount": "1",
        "siteName": "EXAMPLE-SITE",
        "metricName": "org.sam.CREAMCE-JobSubmit",
        "metricStatus": "OK",
        "hostName": "ce01.example.org",
        "serviceFlavour": "CREAM-CE",
    }
    assert body.endswith(b"\nEOT\n")


def test_bulk_headers_have_count_and_no_selectors(probe: ProbeResult) -> None:
    body, headers = encode_body([probe, probe, probe], fmt="json")
    assert headers == {
        "content-type": "application/json",
        "messageClass": "ProbeResult",
        "recordCount": "3",
    }
    assert len(json.loads(body)) == 3


@pytest.mark.parametrize("fmt", ["wlcg", "json"])
@pytest.mark.parametrize("count", [1, 3])
def test_lean_headers_leave_out_only_what_decoding_assumes(
    probe: ProbeResult, fmt: Any, count: int
) -> None:
    batch = [probe] * count
    body, full = encode_body(batch, fmt=fmt)
    lean = body_headers(batch, fmt, lean=True)
    left_out = {"content-type"} if fmt == "wlcg" else set()
    left_out |= {"messageClass"} | ({"recordCount"} if count == 1 else set())
    assert full.keys() - lean.keys() == left_out and lean.items() <= full.items()
    assert decode_body(body, lean) == decode_body(body, full)
    job = {"jobId": "j", "state": "DONE", "timestamp": "2026-01-01T00:00:00Z", "hostName": "ce"}
    other = build_message(JobStatusEvent, job)
    assert body_headers([other], fmt, lean=True)["messageClass"] == "JobStatusEvent"


@pytest.mark.parametrize("fmt", ["wlcg", "json"])
def test_body_round_trip(probe: ProbeResult, fmt: Any) -> None:
    body, headers = encode_body([probe, probe], fmt=fmt)
    results = decode_body(body, headers)
    assert [(r.message_no, r.message, r.errors) for r in results] == [
        (1, probe, ()),
        (2, probe, ()),
    ]


def test_encode_refusals(probe: ProbeResult) -> None:
    job = build_message(
        JobStatusEvent,
        {"jobId": "j", "state": "DONE", "timestamp": "2026-01-01T00:00:00Z", "hostName": "ce"},
    )
    with pytest.raises(SchemaError, match="one message type, got JobStatusEvent, ProbeResult"):
        encode_body([probe, job])
    with pytest.raises(SchemaError, match="no message"):
        encode_body([])
    with pytest.raises(SchemaError, match="unknown body format 'xml'"):
        encode_body(probe, fmt="xml")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("content_type", "text", "expected"),
    [
        ("application/json", "x", "json"),
        ("application/vnd.msgbus+json; charset=utf-8", "x", "json"),
        ("text/plain", "{", "wlcg"),
        (None, "  [", "json"),
        (None, "\n{", "json"),
        (None, "serviceURI: x", "wlcg"),
        ("application/octet-stream", "{}", "json"),
        ("application/octet-stream", "a: b", "wlcg"),
    ],
)
def test_format_of(content_type: str | None, text: str, expected: str) -> None:
    assert format_of(text, content_type) == expected


def test_message_class_picks_the_model() -> None:
    body = json.dumps(
        {
            "transferId": "t",
            "source": "s",
            "destination": "d",
            "bytesTransferred": 5,
            "durationSeconds": 0.25,
            "status": "FAILED",
            "timestamp": "2026-01-01T00:00:00Z",
        }
    ).encode()
    [result] = decode_body(body, {"messageClass": "TransferEvent"})
    assert isinstance(result.message, TransferEvent)
    [as_probe] = decode_body(body, {})
    assert not as_probe.ok and any(e.field == "hostName" for e in as_probe.errors)


def test_bulk_with_one_invalid_message(probe: ProbeResult) -> None:
    good, _ = encode_body(probe)
    body = good + b"serviceURI: broken\nmetricStatus: FINE\nEOT\n" + good
    results = decode_body(body, {"recordCount": "3"})
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].message_no == 2
    assert "message 2, line" in results[1].reason and "metricStatus" in results[1].reason


@pytest.mark.parametrize(
    ("body", "headers", "match"),
    [
        (b"\xc3\x28", {}, "not UTF-8"),
        (b"[{", {}, "not valid JSON"),
        (b"{}", {"messageClass": "Nope"}, "unknown messageClass 'Nope'"),
        (b"x" * (100 * 1024 * 1024), {}, "over the limit of 16777216 bytes"),
        (b"", {}, "holds no message"),
        (b" \r\n\t\n", {}, "holds no message"),
        (b"EOT\n\nEOT\n", {"content-type": "text/plain"}, "holds no message"),
        (b"[]", {"content-type": "application/json"}, "holds no message"),
    ],
)
def test_unsplittable_body_gives_one_error(
    body: bytes, headers: dict[str, str], match: str
) -> None:
    [result] = decode_body(body, headers)
    assert result.message is None and result.message_no is None
    [problem] = result.errors
    assert isinstance(problem, DecodeError)
    assert match in str(problem)


def test_size_cap_is_configurable(probe: ProbeResult) -> None:
    body, headers = encode_body(probe)
    [result] = decode_body(body, headers, max_bytes=len(body) - 1)
    assert "over the limit" in result.reason
    assert decode_body(body, headers, max_bytes=len(body))[0].ok


@pytest.mark.parametrize("declared", ["3", "x", ""])
def test_record_count_mismatch_is_reported_after_the_messages(
    probe: ProbeResult, declared: str
) -> None:
    body, headers = encode_body([probe, probe])
    results = decode_body(body, {**headers, "recordCount": declared})
    assert [r.ok for r in results] == [True, True, False]
    assert results[2].message_no is None
    assert results[2].errors[0].field == "recordCount"
    assert "holds 2 message(s)" in results[2].reason
