"""The message models: WLCG probe results, job state changes, file transfers.

Field names are the wire keys (camelCase, as MSG and ARGO carry them). Keys a model
does not know are kept (``extra="allow"``) so a message survives a round trip whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, ClassVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from msgbus.errors import DecodeError
from msgbus.schema.nagios import PerfDatum, parse_perfdata
from msgbus.schema.status import JobState, MetricStatus, TransferStatus
from msgbus.schema.types import Line, OptionalText, Text, UtcTimestamp

__all__ = [
    "IndexColumns",
    "JobStatusEvent",
    "Message",
    "ProbeResult",
    "TransferEvent",
]


@dataclass(frozen=True, slots=True)
class IndexColumns:
    """Which model fields the store indexes; None where a type has no such field."""

    key: str
    status: str
    timestamp: str
    site: str | None = None
    host: str | None = None


class Message(BaseModel):
    """Base of every message type; subclasses set the ClassVars."""

    # Frozen: a message validated once stays valid (no unchecked assignment later).
    model_config = ConfigDict(
        extra="allow", frozen=True, field_title_generator=lambda name, _info: name
    )

    message_class: ClassVar[str]
    """The STOMP ``messageClass`` header value naming this type."""
    index: ClassVar[IndexColumns]
    selector_fields: ClassVar[tuple[str, ...]]
    """Fields copied to STOMP headers of a single-message body, for broker selectors."""
    multiline_field: ClassVar[str | None] = None
    """The one field that may span lines; the WLCG text format writes it last."""

    def index_values(self) -> dict[str, str | datetime | None]:
        """The indexed columns of this message: site, host, key, status, timestamp."""
        # The store calls this for every message: read the fields straight from the
        # instance dict (a type without site or host names None: no field is "").
        idx = self.index
        fields = self.__dict__
        status = fields[idx.status]
        return {
            "site": fields.get(idx.site or ""),
            "host": fields.get(idx.host or ""),
            "key": fields[idx.key],
            # _value_, not the .value property: a Python call per message (measured).
            "status": status._value_ if isinstance(status, Enum) else status,
            "timestamp": fields[idx.timestamp],
        }


def _flavour_or_type_schema(schema: dict[str, Any]) -> None:
    # Either key suffices on the wire; the model fills the other.
    schema["required"] = [
        name for name in schema["required"] if name not in ("serviceFlavour", "serviceType")
    ]
    schema["anyOf"] = [{"required": ["serviceFlavour"]}, {"required": ["serviceType"]}]


class ProbeResult(Message):
    """A WLCG/Nagios probe result (WLCG Grid Monitoring Probe Specification)."""

    model_config = ConfigDict(json_schema_extra=_flavour_or_type_schema)

    message_class: ClassVar[str] = "ProbeResult"
    index: ClassVar[IndexColumns] = IndexColumns(
        site="siteName",
        host="hostName",
        key="metricName",
        status="metricStatus",
        timestamp="timestamp",
    )
    selector_fields: ClassVar[tuple[str, ...]] = (
        "siteName",
        "metricName",
        "metricStatus",
        "hostName",
        "serviceFlavour",
    )
    multiline_field: ClassVar[str | None] = "detailsData"

    serviceURI: Line
    hostName: Line
    # Producers send serviceFlavour, consumers expect serviceType: either fills the other
    # (aliases, not a Python validator: pydantic resolves them natively, per message).
    serviceFlavour: Line = Field(
        description="Service type; serviceType is accepted instead",
        validation_alias=AliasChoices("serviceFlavour", "serviceType"),
    )
    siteName: Line
    metricStatus: MetricStatus
    metricName: Line
    summaryData: Line
    gatheredAt: OptionalText | None = None
    timestamp: UtcTimestamp
    nagiosName: OptionalText | None = None
    role: OptionalText | None = None
    voName: OptionalText | None = None
    voFqan: OptionalText | None = None
    serviceType: Line = Field(
        description="Consumer name of serviceFlavour; filled from it",
        validation_alias=AliasChoices("serviceType", "serviceFlavour"),
    )
    encrypted: bool | None = None
    performanceData: OptionalText | None = Field(
        None, description="Nagios performance data, 'label'=value[UOM];warn;crit;min;max ..."
    )
    detailsData: Text | None = Field(
        None, description="Long output; may span lines, but no line may read only 'EOT'"
    )

    @field_validator("performanceData")
    @classmethod
    def _perfdata_parses(cls, value: str | None) -> str | None:
        if value:
            try:
                parse_perfdata(value)
            except DecodeError as exc:
                raise PydanticCustomError("perfdata", "{reason}", {"reason": exc.reason}) from None
        return value

    @property
    def perfdata(self) -> list[PerfDatum]:
        """``performanceData`` parsed (empty when absent)."""
        return parse_perfdata(self.performanceData) if self.performanceData else []


class JobStatusEvent(Message):
    """A grid job changed state (an L&B-style job status event)."""

    message_class: ClassVar[str] = "JobStatusEvent"
    index: ClassVar[IndexColumns] = IndexColumns(
        site="siteName",
        host="hostName",
        key="jobId",
        status="state",
        timestamp="timestamp",
    )
    # What L&B-style watchers select on: one job, one owner, a VO, a site, a state.
    selector_fields: ClassVar[tuple[str, ...]] = (
        "jobId",
        "owner",
        "state",
        "voName",
        "siteName",
        "hostName",
    )

    jobId: Line = Field(description="Grid job identifier, e.g. https://lb.example.org:9000/abc")
    state: JobState
    previousState: JobState | None = None
    timestamp: UtcTimestamp
    hostName: Line = Field(description="The computing element (CE) host running the job")
    ceId: OptionalText | None = Field(None, description="Full CE id, host:port/queue")
    siteName: OptionalText | None = None
    reason: OptionalText | None = None
    owner: OptionalText | None = Field(None, description="Owner's certificate DN")
    voName: OptionalText | None = None


class TransferEvent(Message):
    """A file transfer record (FTS-style)."""

    message_class: ClassVar[str] = "TransferEvent"
    index: ClassVar[IndexColumns] = IndexColumns(
        site="sourceSite",
        host="hostName",
        key="transferId",
        status="status",
        timestamp="timestamp",
    )
    selector_fields: ClassVar[tuple[str, ...]] = (
        "sourceSite",
        "destinationSite",
        "status",
        "voName",
    )

    transferId: Line
    source: Line = Field(description="Source file URL")
    destination: Line = Field(description="Destination file URL")
    # Bounded to fit a signed 64-bit column (BIGINT) in every store backend.
    bytesTransferred: int = Field(ge=0, le=2**63 - 1)
    durationSeconds: float = Field(ge=0, allow_inf_nan=False)
    status: TransferStatus
    timestamp: UtcTimestamp
    hostName: OptionalText | None = Field(None, description="Transfer service host reporting it")
    sourceSite: OptionalText | None = None
    destinationSite: OptionalText | None = None
    voName: OptionalText | None = None
    reason: OptionalText | None = Field(None, description="Failure reason")
