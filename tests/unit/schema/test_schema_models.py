"""The message models: mandatory fields, types, timestamps, unknown keys, indexes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from msgbus.errors import DecodeError, SchemaError
from msgbus.schema import (
    MESSAGE_TYPES,
    JobState,
    JobStatusEvent,
    MetricStatus,
    PerfDatum,
    ProbeResult,
    TransferEvent,
    build_message,
    model_for,
    validate_message,
)

MANDATORY = [
    "serviceURI",
    "hostName",
    "siteName",
    "metricStatus",
    "metricName",
    "summaryData",
    "timestamp",
]


def problems(fields: dict[str, Any], model: type = ProbeResult) -> list[DecodeError]:
    result = validate_message(model, fields, 1)
    assert result.message is None
    return list(result.errors)


def test_valid_probe(probe_fields: dict[str, Any]) -> None:
    probe = build_message(ProbeResult, probe_fields)
    assert probe.metricStatus is MetricStatus.OK
    assert probe.timestamp == datetime(2026, 3, 1, 12, 30, tzinfo=timezone.utc)
    assert probe.voName == "ops"
    assert probe.detailsData is None


@pytest.mark.parametrize("name", MANDATORY)
def test_each_mandatory_field_is_required(probe_fields: dict[str, Any], name: str) -> None:
    del probe_fields[name]
    [problem] = problems(probe_fields)
    assert problem.field == name
    assert problem.message_no == 1
    assert "mandatory field missing" in str(problem)


@pytest.mark.parametrize("name", ["serviceURI", "hostName", "siteName", "summaryData"])
def test_mandatory_text_may_not_be_empty(probe_fields: dict[str, Any], name: str) -> None:
    probe_fields[name] = ""
    [problem] = problems(probe_fields)
    assert problem.field == name


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\x00b"])
def test_single_line_fields_refuse_breaks_and_nul(probe_fields: dict[str, Any], bad: str) -> None:
    probe_fields["summaryData"] = bad
    [problem] = problems(probe_fields)
    assert problem.field == "summaryData"


def test_details_may_not_hold_nul(probe_fields: dict[str, Any]) -> None:
    # Line breaks and CRs in detailsData: test_details_may_span_lines_but_not_hold_eot.
    probe_fields["detailsData"] = "a\x00b"
    [problem] = problems(probe_fields)
    assert problem.field == "detailsData" and "NUL" in str(problem)


def test_flavour_fills_type_and_back(probe_fields: dict[str, Any]) -> None:
    assert build_message(ProbeResult, probe_fields).serviceType == "CREAM-CE"
    del probe_fields["serviceFlavour"]
    probe_fields["serviceType"] = "ARC-CE"
    probe = build_message(ProbeResult, probe_fields)
    assert (probe.serviceFlavour, probe.serviceType) == ("ARC-CE", "ARC-CE")


def test_flavour_and_type_both_given_are_kept(probe_fields: dict[str, Any]) -> None:
    probe_fields["serviceType"] = "org.example.ce"
    probe = build_message(ProbeResult, probe_fields)
    assert (probe.serviceFlavour, probe.serviceType) == ("CREAM-CE", "org.example.ce")


def test_neither_flavour_nor_type(probe_fields: dict[str, Any]) -> None:
    del probe_fields["serviceFlavour"]
    assert {p.field for p in problems(probe_fields)} == {"serviceFlavour", "serviceType"}


@pytest.mark.parametrize("status", ["ok", "DOWN", "", "0", 0])
def test_unknown_status(probe_fields: dict[str, Any], status: object) -> None:
    probe_fields["metricStatus"] = status
    [problem] = problems(probe_fields)
    assert problem.field == "metricStatus"
    assert "'OK', 'WARNING', 'CRITICAL' or 'UNKNOWN'" in problem.reason


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-03-01 12:30:00", "YYYY-MM-DDTHH:MM:SSZ"),
        ("2026-03-01T12:30:00+00:00", "YYYY-MM-DDTHH:MM:SSZ"),
        ("2026-03-01T12:30:00.5Z", "YYYY-MM-DDTHH:MM:SSZ"),
        ("\u0662026-03-01T12:30:00Z", "YYYY-MM-DDTHH:MM:SSZ"),
        ("2026-02-30T12:30:00Z", "not a real date/time"),
        ("2026-03-01T25:00:00Z", "not a real date/time"),
        (1772368200, "got int"),
        (datetime(2026, 3, 1, 12, 30), "naive"),
        (datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))), "outside the years 1-9999"),
    ],
)
def test_bad_timestamps(probe_fields: dict[str, Any], value: object, expected: str) -> None:
    probe_fields["timestamp"] = value
    [problem] = problems(probe_fields)
    assert problem.field == "timestamp"
    assert expected in problem.reason


def test_datetime_timestamps_become_whole_utc_seconds(probe_fields: dict[str, Any]) -> None:
    cet = timezone(timedelta(hours=1))
    probe_fields["timestamp"] = datetime(2026, 3, 1, 13, 30, 0, 999_999, tzinfo=cet)
    probe = build_message(ProbeResult, probe_fields)
    assert probe.timestamp == datetime(2026, 3, 1, 12, 30, tzinfo=timezone.utc)
    assert probe.model_dump(mode="json")["timestamp"] == "2026-03-01T12:30:00Z"


def test_early_years_keep_four_digits(probe_fields: dict[str, Any]) -> None:
    probe_fields["timestamp"] = "0999-01-02T03:04:05Z"
    probe = build_message(ProbeResult, probe_fields)
    assert probe.model_dump(mode="json")["timestamp"] == "0999-01-02T03:04:05Z"


def test_wrong_type_names_field_and_value(probe_fields: dict[str, Any]) -> None:
    probe_fields["hostName"] = 42
    [problem] = problems(probe_fields)
    assert problem.field == "hostName"
    assert "got 42" in problem.reason


def test_unknown_keys_are_kept(probe_fields: dict[str, Any]) -> None:
    probe_fields["siteBDII"] = "bdii.example.org"
    probe = build_message(ProbeResult, probe_fields)
    assert probe.model_extra == {"siteBDII": "bdii.example.org"}
    assert probe.model_dump()["siteBDII"] == "bdii.example.org"


def test_encrypted_accepts_yes_no(probe_fields: dict[str, Any]) -> None:
    probe_fields["encrypted"] = "yes"
    assert build_message(ProbeResult, probe_fields).encrypted is True
    probe_fields["encrypted"] = "maybe"
    [problem] = problems(probe_fields)
    assert problem.field == "encrypted"


def test_details_may_span_lines_but_not_hold_eot(probe_fields: dict[str, Any]) -> None:
    probe_fields["detailsData"] = "one\r\ntwo\r\n\nEOTX\n EOT"
    assert build_message(ProbeResult, probe_fields).detailsData == "one\ntwo\n\nEOTX\n EOT"
    probe_fields["detailsData"] = "one\nEOT\nthree"
    [problem] = problems(probe_fields)
    assert problem.field == "detailsData"
    assert "'EOT'" in problem.reason


def test_perfdata_parsed_and_raw_kept(probe_fields: dict[str, Any]) -> None:
    raw = "time=0.52s;1;5;0; 'free space'=80%;;;0;100"
    probe_fields["performanceData"] = raw
    probe = build_message(ProbeResult, probe_fields)
    assert probe.performanceData == raw
    assert probe.perfdata == [
        PerfDatum("time", 0.52, "s", "1", "5", 0.0, None),
        PerfDatum("free space", 80.0, "%", "", "", 0.0, 100.0),
    ]


def test_bad_perfdata_is_a_field_problem(probe_fields: dict[str, Any]) -> None:
    probe_fields["performanceData"] = "time=fast"
    [problem] = problems(probe_fields)
    assert problem.field == "performanceData"
    assert "time" in problem.reason


def test_build_message_raises_schema_error_listing_all(probe_fields: dict[str, Any]) -> None:
    del probe_fields["hostName"]
    probe_fields["metricStatus"] = "BAD"
    with pytest.raises(SchemaError) as info:
        build_message(ProbeResult, probe_fields)
    assert "hostName" in str(info.value)
    assert "metricStatus" in str(info.value)


def test_job_status_event() -> None:
    event = build_message(
        JobStatusEvent,
        {
            "jobId": "https://lb.example.org:9000/abc",
            "state": "RUNNING",
            "previousState": "SCHEDULED",
            "timestamp": "2026-03-01T12:00:00Z",
            "hostName": "ce01.example.org",
            "siteName": "EXAMPLE-SITE",
            "owner": "/DC=org/CN=someone",
        },
    )
    assert event.state is JobState.RUNNING
    assert event.index_values() == {
        "site": "EXAMPLE-SITE",
        "host": "ce01.example.org",
        "key": "https://lb.example.org:9000/abc",
        "status": "RUNNING",
        "timestamp": datetime(2026, 3, 1, 12, tzinfo=timezone.utc),
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("bytesTransferred", -1),
        ("durationSeconds", float("nan")),
        ("durationSeconds", -0.5),
        ("bytesTransferred", "many"),
        ("status", "DONE"),
    ],
)
def test_transfer_event_bad_values(field: str, value: object) -> None:
    fields: dict[str, Any] = {
        "transferId": "t-1",
        "source": "gsiftp://a.example.org/f",
        "destination": "gsiftp://b.example.org/f",
        "bytesTransferred": 1024,
        "durationSeconds": 1.5,
        "status": "FINISHED",
        "timestamp": "2026-03-01T12:00:00Z",
    }
    assert build_message(TransferEvent, fields).index_values()["key"] == "t-1"
    fields[field] = value
    [problem] = problems(fields, TransferEvent)
    assert problem.field == field


def test_probe_index_columns(probe_fields: dict[str, Any]) -> None:
    values = build_message(ProbeResult, probe_fields).index_values()
    assert values["site"] == "EXAMPLE-SITE"
    assert values["key"] == "org.sam.CREAMCE-JobSubmit"
    assert values["status"] == "OK"


def test_every_index_column_names_a_field() -> None:
    for model in MESSAGE_TYPES.values():
        idx = model.index
        for name in (idx.site, idx.host, idx.key, idx.status, idx.timestamp):
            assert name is None or name in model.model_fields
        assert all(name in model.model_fields for name in model.selector_fields)


def test_registry() -> None:
    assert set(MESSAGE_TYPES) == {"ProbeResult", "JobStatusEvent", "TransferEvent"}
    assert model_for("TransferEvent") is TransferEvent
    with pytest.raises(SchemaError, match=r"unknown messageClass 'Nope'.*ProbeResult"):
        model_for("Nope")


def test_messages_are_frozen(probe_fields: dict[str, Any]) -> None:
    probe = build_message(ProbeResult, probe_fields)
    with pytest.raises(ValidationError, match="frozen"):
        probe.metricStatus = "BAD"  # type: ignore[misc, assignment]  # frozen: the point of the test
    assert probe.metricStatus is MetricStatus.OK
