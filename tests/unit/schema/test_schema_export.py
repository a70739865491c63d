"""JSON Schema export: the committed files match the models and describe the wire."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from msgbus.schema import (
    MESSAGE_TYPES,
    ProbeResult,
    build_message,
    encode_json,
    export_schemas,
    json_schema,
    schema_text,
)

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"


@pytest.mark.parametrize("name", sorted(MESSAGE_TYPES))
def test_committed_schema_matches_model(name: str) -> None:
    committed = (SCHEMAS / f"{name}.json").read_text(encoding="utf-8")
    assert committed == schema_text(MESSAGE_TYPES[name]), (
        f"schemas/{name}.json is stale: run `msgbus schema export` and commit the result"
    )


def test_no_stray_schema_files() -> None:
    assert {p.stem for p in SCHEMAS.glob("*.json")} == set(MESSAGE_TYPES)


def test_export_writes_every_type(tmp_path: Path) -> None:
    written = export_schemas(tmp_path / "out")
    assert sorted(p.name for p in written) == sorted(f"{n}.json" for n in MESSAGE_TYPES)
    for path in written:
        jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text()))


def test_encoded_json_satisfies_schema(probe_fields: dict[str, Any]) -> None:
    validator = jsonschema.Draft202012Validator(json_schema(ProbeResult))
    probe_fields["siteBDII"] = "bdii.example.org"
    doc = json.loads(encode_json([build_message(ProbeResult, probe_fields)]))
    validator.validate(doc)
    del doc["serviceFlavour"]
    validator.validate(doc)  # serviceType alone is enough
    del doc["serviceType"]
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(doc)


@pytest.mark.parametrize(
    ("field", "value"),
    [("metricStatus", "FINE"), ("timestamp", "2026-03-01 12:30"), ("hostName", "a\nb")],
)
def test_schema_rejects_what_the_model_rejects(
    probe_fields: dict[str, Any], field: str, value: str
) -> None:
    validator = jsonschema.Draft202012Validator(json_schema(ProbeResult))
    validator.validate(probe_fields)
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({**probe_fields, field: value})
