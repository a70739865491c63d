"""Reliable publishing: confirmed, pipelined delivery with failover and a local spool."""

from msgbus.publish.envelope import ID_HEADER, Envelope, new_id
from msgbus.publish.metrics import PublisherMetrics
from msgbus.publish.publisher import DrainReport, Publisher, PublishReport, publish_once
from msgbus.publish.spool import Spool, SpoolStatus

__all__ = [
    "ID_HEADER",
    "DrainReport",
    "Envelope",
    "PublishReport",
    "Publisher",
    "PublisherMetrics",
    "Spool",
    "SpoolStatus",
    "new_id",
    "publish_once",
]
