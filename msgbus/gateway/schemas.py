"""AMS schemas: named JSON Schema, Avro and msgbus message-type checks that topics take.

A schema is AMS's object (``name``, ``uuid``, ``type``, ``schema``). Its ``type`` is
AMS's ``json`` (a message's data is a JSON document valid against the JSON Schema) or
``avro`` (the data is one datum in Avro binary encoding of the schema), or msgbus's
``wlcg`` (the data holds valid msgbus messages, WLCG text or JSON, the ``messageClass``
attribute choosing the model, as ``msgbus publish`` checks them; the schema body may
name the one class it takes: ``{"messageClass": "ProbeResult"}``).

A topic checks what is attached to it (``:attachSchema``), else what
``gateway.topics.<name>.schema`` configures (``wlcg``). A refusal is AMS's 400,
``Message <index, from 0> data is not valid,<field>: <why>``. Unlike AMS, bytes left
over after an Avro datum are refused too: they would be silently dropped by readers.
Schemas and attachments are kept in ``state_dir/schemas.json``.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import avro.errors
import avro.io
import avro.schema
import jsonschema

from msgbus.gateway.amserror import AmsError
from msgbus.schema import HEADER_MESSAGE_CLASS, MESSAGE_TYPES, decode_body

__all__ = ["TYPES", "Checker", "SchemaRegistry"]

TYPES = ("json", "avro", "wlcg")
Checker = Callable[[int, bytes, Mapping[str, str]], "str | None"]
"""(index of the message from 0, its data, its attributes) -> the refusal, or None."""


@dataclass(frozen=True)
class _Schema:
    uuid: str
    type: str
    body: dict[str, Any]
    check: Checker


def compile_schema(kind: str, body: Mapping[str, Any]) -> Checker:
    """The check a schema of type ``kind`` makes; a 400 when ``body`` is no such schema."""
    if kind == "json":
        return _json(dict(body))
    if kind == "avro":
        return _avro(dict(body))
    if kind == "wlcg":
        return _wlcg(dict(body))
    raise AmsError(400, f"Schema type can only be 'json', 'avro' or 'wlcg', not {kind!r}")


def _json(body: dict[str, Any]) -> Checker:
    cls = jsonschema.validators.validator_for(body)
    try:
        cls.check_schema(body)
    except jsonschema.SchemaError as e:
        raise AmsError(400, f"Invalid JSON Schema: {e.message}") from None
    validator = cls(body)

    def check(index: int, data: bytes, attributes: Mapping[str, str]) -> str | None:
        try:
            document = json.loads(data)
        except ValueError as e:
            return f"Message {index} data is not valid JSON format,{e}"
        errors = sorted(validator.iter_errors(document), key=lambda e: [str(p) for p in e.path])
        found = [f"{'.'.join(str(p) for p in e.path) or '(root)'}: {e.message}" for e in errors]
        if len(found) == 1:
            return f"Message {index} data is not valid,{found[0]}"
        if found:  # AMS's way of listing several
            listed = "".join(f"{n}){f}." for n, f in enumerate(found, 1))
            return f"Message {index} data is not valid.{listed}"
        return None

    return check


def _avro(body: dict[str, Any]) -> Checker:
    try:
        schema = avro.schema.parse(json.dumps(body))
    except (avro.errors.AvroException, ValueError, TypeError) as e:
        raise AmsError(400, f"Invalid Avro schema: {e}") from None
    if _endless(schema, set()):
        raise AmsError(
            400,
            "Invalid Avro schema: an array of items that take no bytes (null, an empty record "
            "or fixed) lets a few bytes claim any number of items; give the items a value",
        )
    # A record is read field by field so that a refusal names the field.
    parts = (
        [(f.name, f.type) for f in schema.fields]
        if isinstance(schema, avro.schema.RecordSchema)
        else [("(root)", schema)]
    )
    readers = [(name, avro.io.DatumReader(part)) for name, part in parts]

    def check(index: int, data: bytes, attributes: Mapping[str, str]) -> str | None:
        stream = io.BytesIO(data)
        decoder = avro.io.BinaryDecoder(stream)
        for name, reader in readers:
            try:
                reader.read(decoder)
            except (avro.errors.AvroException, ValueError) as e:
                return f"Message {index} data is not valid,{name}: {e}"
        left = len(data) - stream.tell()
        if left:
            return f"Message {index} data is not valid,(root): {left} bytes after the datum"
        return None

    return check


def _endless(schema: avro.schema.Schema, seen: set[int]) -> bool:
    """Whether ``schema`` has an array whose items take no bytes: decoding a count of
    2**62 of them would hold the gateway for ever."""
    if id(schema) in seen:  # a named type referring to itself
        return False
    seen.add(id(schema))
    if isinstance(schema, avro.schema.ArraySchema):
        return _zero_width(schema.items) or _endless(schema.items, seen)
    if isinstance(schema, avro.schema.MapSchema):
        return _endless(schema.values, seen)
    if isinstance(schema, avro.schema.UnionSchema):
        return any(_endless(s, seen) for s in schema.schemas)
    if isinstance(schema, avro.schema.RecordSchema):
        return any(_endless(f.type, seen) for f in schema.fields)
    return False


def _zero_width(schema: avro.schema.Schema) -> bool:
    if isinstance(schema, avro.schema.RecordSchema):
        return all(_zero_width(f.type) for f in schema.fields)
    if isinstance(schema, avro.schema.FixedSchema):
        return bool(schema.size == 0)
    return bool(schema.type == "null")


def _wlcg(body: dict[str, Any]) -> Checker:
    fixed = body.get("messageClass")
    if fixed is not None and fixed not in MESSAGE_TYPES:
        raise AmsError(
            400, f"Invalid wlcg schema: messageClass must be one of {sorted(MESSAGE_TYPES)}"
        )
    if set(body) - {"messageClass"}:
        raise AmsError(400, 'Invalid wlcg schema: it takes only {"messageClass": NAME}')

    def check(index: int, data: bytes, attributes: Mapping[str, str]) -> str | None:
        headers = dict(attributes)
        if fixed is not None and headers.setdefault(HEADER_MESSAGE_CLASS, fixed) != fixed:
            given = headers[HEADER_MESSAGE_CLASS]
            return f"Message {index} data is not valid,messageClass: {given}, not {fixed}"
        problems = [r.reason for r in decode_body(data, headers) if r.message is None]
        return f"Message {index} data is not valid,{'; '.join(problems)}" if problems else None

    return check


class SchemaRegistry:
    """The project's schemas and which topic has which; thread-safe."""

    def __init__(self, project: str, state_dir: Path, configured: Mapping[str, str]) -> None:
        self.project = project
        self._path = Path(state_dir) / "schemas.json"
        self._lock = threading.Lock()
        self._schemas: dict[str, _Schema] = {}
        self._attached: dict[str, str] = {}  # topic -> schema name
        # gateway.topics.<name>.schema: built in, not listed, not detachable.
        self._configured = {t: compile_schema(kind, {}) for t, kind in configured.items()}
        if self._path.exists():
            data = json.loads(self._path.read_text())
            for name, s in data.get("schemas", {}).items():
                self._schemas[name] = _Schema(
                    s["uuid"], s["type"], s["schema"], compile_schema(s["type"], s["schema"])
                )
            self._attached = dict(data.get("topics", {}))

    def ref(self, name: str) -> str:
        return f"projects/{self.project}/schemas/{name}"

    def _save(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "schemas": {
                n: {"uuid": s.uuid, "type": s.type, "schema": s.body}
                for n, s in self._schemas.items()
            },
            "topics": self._attached,
        }
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(self._path)  # never a half-written file

    def _describe(self, name: str) -> dict[str, Any]:
        s = self._schemas[name]
        return {"uuid": s.uuid, "name": self.ref(name), "type": s.type, "schema": s.body}

    def _get(self, name: str) -> _Schema:
        schema = self._schemas.get(name)
        if schema is None:
            raise AmsError(404, "Schema doesn't exist")
        return schema

    def _name_of(self, ref: str) -> str:
        parts = ref.strip("/").split("/")
        if len(parts) != 4 or parts[0] != "projects" or parts[2] != "schemas":
            raise AmsError(400, f"Invalid schema name {ref[:200]!r}: not projects/P/schemas/S")
        if parts[1] != self.project:
            raise AmsError(404, "Project doesn't exist")
        return parts[3]

    # -- the schema routes --------------------------------------------------------

    def create(self, name: str, kind: str, body: Mapping[str, Any]) -> dict[str, Any]:
        kind = kind.lower()
        check = compile_schema(kind, body)
        with self._lock:
            if name in self._schemas:
                raise AmsError(409, "Schema already exists")
            self._schemas[name] = _Schema(str(uuid.uuid4()), kind, dict(body), check)
            self._save()
            return self._describe(name)

    def get(self, name: str) -> dict[str, Any]:
        with self._lock:
            self._get(name)
            return self._describe(name)

    def listing(self) -> dict[str, Any]:
        with self._lock:
            return {"schemas": [self._describe(n) for n in sorted(self._schemas)]}

    def topics_of(self, name: str) -> list[str]:
        """The topics ``name`` is attached to (whose admins may change it)."""
        with self._lock:
            return sorted(t for t, s in self._attached.items() if s == name)

    def update(
        self, name: str, new_ref: str | None, kind: str | None, body: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """AMS's update: any of the name, the type and the schema; the topics that have
        it keep it under its new name."""
        new_name = self._name_of(new_ref) if new_ref else name
        with self._lock:
            old = self._get(name)
            if new_name != name and new_name in self._schemas:
                raise AmsError(409, "Schema already exists")
            new_kind = kind.lower() if kind else old.type
            new_body = dict(body) if body else old.body
            check = compile_schema(new_kind, new_body)
            del self._schemas[name]
            self._schemas[new_name] = _Schema(old.uuid, new_kind, new_body, check)
            self._attached = {t: new_name if s == name else s for t, s in self._attached.items()}
            self._save()
            return self._describe(new_name)

    def delete(self, name: str) -> None:
        """Forget ``name``; the topics that had it take any message again, as on AMS."""
        with self._lock:
            self._get(name)
            del self._schemas[name]
            self._attached = {t: s for t, s in self._attached.items() if s != name}
            self._save()

    def validate(self, name: str, raw: bytes) -> None:
        """AMS's ``:validate``: a JSON schema takes the request body as the message; the
        others take ``{"data": base64}`` (and, for wlcg, ``attributes``)."""
        with self._lock:
            schema = self._get(name)
        attributes: Mapping[str, str] = {}
        if schema.type == "json":
            data = raw
        else:
            data, attributes = _payload(raw)
        refusal = schema.check(0, data, attributes)
        if refusal is not None:
            raise AmsError(400, refusal)

    # -- topics -------------------------------------------------------------------

    def attach(self, topic: str, ref: str) -> None:
        """AMS's ``:attachSchema``: no schema given detaches, as on AMS."""
        with self._lock:
            if not ref:
                self._attached.pop(topic, None)
            else:
                name = self._name_of(ref)
                self._get(name)
                self._attached[topic] = name
            self._save()

    def resolve(self, given: str) -> str:
        """The full name of an existing schema given as ``projects/P/schemas/S`` or as
        ``S`` (AMS's topic creation takes either); a 404 when there is none."""
        ref = given if "/" in given else self.ref(given)
        with self._lock:
            self._get(self._name_of(ref))
        return self.ref(self._name_of(ref))

    def forget_topic(self, topic: str) -> None:
        with self._lock:
            if self._attached.pop(topic, None) is not None:
                self._save()

    def ref_of(self, topic: str) -> str | None:
        """The schema attached to ``topic``, as AMS names it in the topic."""
        with self._lock:
            name = self._attached.get(topic)
        return self.ref(name) if name is not None else None

    def check(self, topic: str, index: int, data: bytes, attributes: Mapping[str, str]) -> None:
        """A 400 when message ``index`` (from 0) of a publish to ``topic`` is refused."""
        with self._lock:
            name = self._attached.get(topic)
            check = self._schemas[name].check if name else self._configured.get(topic)
        refusal = check(index, data, attributes) if check is not None else None
        if refusal is not None:
            raise AmsError(400, f"{refusal}; nothing of the request was published")


def _payload(raw: bytes) -> tuple[bytes, dict[str, str]]:
    try:
        body = json.loads(raw)
        data = base64.b64decode(body["data"], validate=True)
    except (ValueError, TypeError, KeyError, binascii.Error):
        raise AmsError(400, 'Invalid Schema Payload: {"data": base64} is needed') from None
    attributes = body.get("attributes") or {}
    if not isinstance(attributes, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in attributes.items()
    ):
        raise AmsError(400, "Invalid Schema Payload: attributes must map strings to strings")
    return data, attributes
