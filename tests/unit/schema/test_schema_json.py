"""The JSON codec: objects and lists, syntax errors with lines, type errors with fields."""

from __future__ import annotations

import json
from typing import Any

import pytest

from msgbus.errors import DecodeError, SchemaError
from msgbus.schema import ProbeResult, build_message, decode_json, encode_json, read_json


def test_object_and_list(probe_fields: dict[str, Any]) -> None:
    [one] = decode_json(json.dumps(probe_fields))
    assert isinstance(one, ProbeResult)
    two = decode_json(json.dumps([probe_fields, probe_fields]).encode())
    assert two == [one, one]
    assert decode_json("[]") == []


def test_round_trip_keeps_unknown_keys(probe_fields: dict[str, Any]) -> None:
    probe_fields["custom"] = {"nested": [1, 2.5, None, True]}
    probe_fields["detailsData"] = "line 1\nline 2"
    [probe] = decode_json(json.dumps(probe_fields))
    text = encode_json([probe])
    assert json.loads(text)["custom"] == {"nested": [1, 2.5, None, True]}
    assert decode_json(text) == [probe]
    assert decode_json(encode_json([probe, probe])) == [probe, probe]


def test_encode_leaves_out_absent_optionals(probe_fields: dict[str, Any]) -> None:
    doc = json.loads(encode_json([build_message(ProbeResult, probe_fields)]))
    assert "detailsData" not in doc and "role" not in doc
    assert doc["timestamp"] == "2026-03-01T12:30:00Z"
    assert doc["metricStatus"] == "OK"


def test_syntax_error_names_line() -> None:
    with pytest.raises(DecodeError, match=r"line 3: not valid JSON: .*column"):
        decode_json('[\n  {"a": 1},\n  {"b" 2}\n]')


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('{"a": NaN}', "NaN is not valid JSON"),
        ('{"a": -Infinity}', "-Infinity is not valid JSON"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"a": ' + "9" * 5000 + "}", "not valid JSON"),
        ('"just a string"', "got a string"),
        ("42", "got a number"),
        ("null", "got a null"),
        ("", "not valid JSON"),
    ],
)
def test_documents_that_are_not_messages(text: str, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        read_json(text)


def test_list_items_must_be_objects(probe_fields: dict[str, Any]) -> None:
    results = read_json(json.dumps([probe_fields, 7, [], probe_fields]))
    assert [r.ok for r in results] == [True, False, False, True]
    assert str(results[1].errors[0]) == "message 2, line 1: expected a JSON object, got a number"
    assert "got a list" in results[2].reason


def test_wrong_types_name_message_line_and_field(probe_fields: dict[str, Any]) -> None:
    bad = dict(probe_fields, hostName=["h"], encrypted="perhaps", timestamp=None)
    [result] = read_json(json.dumps([bad]))
    fields = {e.field: e for e in result.errors}
    assert set(fields) == {"hostName", "encrypted", "timestamp"}
    assert all(e.message_no == 1 and e.line_no == 1 for e in result.errors)
    assert "got NoneType" in fields["timestamp"].reason


def test_problems_name_the_line_their_message_starts_on(probe_fields: dict[str, Any]) -> None:
    good = json.dumps(probe_fields, indent=2)  # 12 lines
    bad = json.dumps(dict(probe_fields, metricStatus="FINE"))
    text = f"\n[\n{good},\n\n  {bad} , 7,\n{good}, {bad}]"
    results = read_json(text)
    assert [r.ok for r in results] == [True, False, False, True, False]
    assert [(e.message_no, e.line_no) for r in results for e in r.errors] == [
        (2, 16),
        (3, 16),
        (5, 28),
    ]
    assert results[0].message == results[3].message
    [single] = read_json("\n\n" + bad)
    assert str(single.errors[0]).startswith("message 1, line 3, field 'metricStatus'")


def test_encode_refuses_values_json_cannot_carry(probe_fields: dict[str, Any]) -> None:
    probe = build_message(ProbeResult, {**probe_fields, "blob": object()})
    with pytest.raises(SchemaError, match="cannot be written as JSON"):
        encode_json([probe])
