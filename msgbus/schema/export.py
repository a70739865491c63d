"""JSON Schema documents for the message types, as committed under ``schemas/``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from msgbus.errors import SchemaError
from msgbus.schema.models import Message
from msgbus.schema.registry import MESSAGE_TYPES

__all__ = ["SCHEMA_DIALECT", "export_schemas", "json_schema", "schema_text"]

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def json_schema(model: type[Message]) -> dict[str, Any]:
    """The JSON Schema (2020-12) a message of ``model`` must satisfy on the wire."""
    schema = {"$schema": SCHEMA_DIALECT, **model.model_json_schema(mode="validation")}
    schema["title"] = model.message_class
    return schema


def schema_text(model: type[Message]) -> str:
    """``json_schema`` rendered stably (sorted keys, 2-space indent, final newline)."""
    return json.dumps(json_schema(model), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def export_schemas(out_dir: Path) -> list[Path]:
    """Write ``<messageClass>.json`` for every registered type into ``out_dir``."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for name, model in MESSAGE_TYPES.items():
            path = out_dir / f"{name}.json"
            path.write_text(schema_text(model), encoding="utf-8")
            written.append(path)
    except OSError as exc:
        raise SchemaError(
            f"cannot write schemas to {out_dir}: {exc.strerror or exc}; "
            "choose a writable --out directory"
        ) from None
    return written
