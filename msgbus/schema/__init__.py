"""Message schema: the models, their WLCG-text and JSON codecs, and the body API.

Publishers call ``encode_body``, consumers ``decode_body``; the store reads each
model's ``index`` and looks types up in ``MESSAGE_TYPES``.
"""

from msgbus.schema.body import (
    CONTENT_TYPES,
    HEADER_CONTENT_TYPE,
    HEADER_MESSAGE_CLASS,
    HEADER_RECORD_COUNT,
    Format,
    decode_body,
    encode_body,
    format_of,
)
from msgbus.schema.export import export_schemas, json_schema, schema_text
from msgbus.schema.jsoncodec import decode_json, encode_json, read_json
from msgbus.schema.models import IndexColumns, JobStatusEvent, Message, ProbeResult, TransferEvent
from msgbus.schema.nagios import (
    NO_OUTPUT,
    PerfDatum,
    PluginOutput,
    parse_perfdata,
    parse_plugin_output,
    status_from_exit_code,
)
from msgbus.schema.registry import DEFAULT_MESSAGE_CLASS, MESSAGE_TYPES, model_for
from msgbus.schema.status import JobState, MetricStatus, TransferStatus
from msgbus.schema.text import DEFAULT_MAX_BYTES
from msgbus.schema.types import UtcTimestamp, format_timestamp
from msgbus.schema.validation import Decoded, build_message, validate_message
from msgbus.schema.wlcg import EOT, decode_wlcg, encode_wlcg, read_wlcg

__all__ = [
    "CONTENT_TYPES",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MESSAGE_CLASS",
    "EOT",
    "HEADER_CONTENT_TYPE",
    "HEADER_MESSAGE_CLASS",
    "HEADER_RECORD_COUNT",
    "MESSAGE_TYPES",
    "NO_OUTPUT",
    "Decoded",
    "Format",
    "IndexColumns",
    "JobState",
    "JobStatusEvent",
    "Message",
    "MetricStatus",
    "PerfDatum",
    "PluginOutput",
    "ProbeResult",
    "TransferEvent",
    "TransferStatus",
    "UtcTimestamp",
    "build_message",
    "decode_body",
    "decode_json",
    "decode_wlcg",
    "encode_body",
    "encode_json",
    "encode_wlcg",
    "export_schemas",
    "format_of",
    "format_timestamp",
    "json_schema",
    "model_for",
    "parse_perfdata",
    "parse_plugin_output",
    "read_json",
    "read_wlcg",
    "schema_text",
    "status_from_exit_code",
    "validate_message",
]
