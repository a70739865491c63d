"""Probe results to store, built directly from the model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from msgbus.schema.models import ProbeResult

ProbeFactory = Callable[..., ProbeResult]


def make_probe(**fields: Any) -> ProbeResult:
    values: dict[str, Any] = {
        "serviceURI": "https://ce01.example.org:8443/ce",
        "hostName": "ce01.example.org",
        "serviceFlavour": "CREAM-CE",
        "siteName": "EXAMPLE-SITE",
        "metricStatus": "OK",
        "metricName": "org.sam.CE-JobSubmit",
        "summaryData": "OK: job submitted",
        "timestamp": "2026-01-01T00:00:00Z",
    }
    values.update(fields)
    return ProbeResult.model_validate(values)


@pytest.fixture
def probe() -> ProbeFactory:
    return make_probe
