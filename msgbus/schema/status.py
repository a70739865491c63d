"""The closed vocabularies of message states: probe status, job state, transfer state."""

from __future__ import annotations

from enum import Enum

__all__ = ["JobState", "MetricStatus", "TransferStatus"]


class MetricStatus(str, Enum):
    """A Nagios/WLCG probe result status."""

    OK = "OK"
    WARNING = "WARNING"
    CRITICAL = "CRITICAL"
    UNKNOWN = "UNKNOWN"


class JobState(str, Enum):
    """A grid job state as the L&B (Logging and Bookkeeping) service names it."""

    SUBMITTED = "SUBMITTED"
    WAITING = "WAITING"
    READY = "READY"
    SCHEDULED = "SCHEDULED"
    RUNNING = "RUNNING"
    DONE = "DONE"
    ABORTED = "ABORTED"
    CANCELLED = "CANCELLED"
    CLEARED = "CLEARED"
    PURGED = "PURGED"
    UNKNOWN = "UNKNOWN"


class TransferStatus(str, Enum):
    """A file-transfer state (FTS vocabulary)."""

    SUBMITTED = "SUBMITTED"
    ACTIVE = "ACTIVE"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
