"""Probe results written straight into a store, for the dashboard tests."""

from __future__ import annotations

import uuid
from typing import Any

from msgbus.schema import ProbeResult, build_message
from msgbus.store import Store, StoredMessage

__all__ = ["SAMPLE", "probe", "seeded_store", "write"]

# One status per cell, so a screenshot tells the cells apart by colour.
SAMPLE = (
    ("SITE-A", "org.sam.CE-JobSubmit", "OK", "2026-03-01T12:00:00Z", "ops"),
    ("SITE-A", "org.sam.CE-JobSubmit", "CRITICAL", "2026-03-01T12:10:00Z", "ops"),
    ("SITE-A", "org.sam.SRM-Put", "WARNING", "2026-03-01T12:00:00Z", "atlas"),
    ("SITE-B", "org.sam.CE-JobSubmit", "OK", "2026-03-01T12:00:00Z", "ops"),
    ("SITE-B", "org.sam.SRM-Put", "UNKNOWN", "2026-03-01T12:00:00Z", "ops"),
)


def probe(site: str, metric: str, status: str, ts: str, **extra: Any) -> ProbeResult:
    fields = {
        "serviceURI": f"ce.{site.lower()}.example.org:8443",
        "hostName": f"ce.{site.lower()}.example.org",
        "serviceFlavour": "CREAM-CE",
        "siteName": site,
        "metricStatus": status,
        "metricName": metric,
        "summaryData": f"{status} - {metric}",
        "timestamp": ts,
        "voName": "ops",
        **extra,
    }
    return build_message(ProbeResult, fields)


def write(store: Store, *results: ProbeResult) -> None:
    store.write([StoredMessage(uuid.uuid4().hex, 1, r) for r in results])


def seeded_store(url: str) -> Store:
    store = Store(url)
    store.init()
    write(store, *(probe(s, m, st, ts, voName=vo) for s, m, st, ts, vo in SAMPLE))
    return store
