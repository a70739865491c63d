"""Sample messages for the schema tests."""

from __future__ import annotations

from typing import Any

import pytest

PROBE_FIELDS: dict[str, Any] = {
    "serviceURI": "ce01.example.org:8443",
    "hostName": "ce01.example.org",
    "serviceFlavour": "CREAM-CE",
    "siteName": "EXAMPLE-SITE",
    "metricStatus": "OK",
    "metricName": "org.sam.CREAMCE-JobSubmit",
    "summaryData": "OK - job submitted and finished",
    "gatheredAt": "mon.example.org",
    "timestamp": "2026-03-01T12:30:00Z",
    "voName": "ops",
}

# As GridMon::MetricOutput writes it: detailsData last, EOT after each message.
WLCG_TWO = """\
serviceURI: ce01.example.org:8443
hostName: ce01.example.org
serviceFlavour: CREAM-CE
siteName: EXAMPLE-SITE
metricStatus: OK
metricName: org.sam.CREAMCE-JobSubmit
summaryData: OK - job submitted
gatheredAt: mon.example.org
timestamp: 2026-03-01T12:30:00Z
voName: ops
detailsData: Job https://lb.example.org:9000/abc
  finished: Done (Success)
EOT
serviceURI: se01.example.org
hostName: se01.example.org
serviceFlavour: SRM
siteName: EXAMPLE-SITE
metricStatus: CRITICAL
metricName: org.sam.SRM-Put
summaryData: CRITICAL - put failed
gatheredAt: mon.example.org
timestamp: 2026-03-01T12:31:00Z
EOT
"""


@pytest.fixture
def probe_fields() -> dict[str, Any]:
    return dict(PROBE_FIELDS)


@pytest.fixture
def wlcg_two() -> str:
    return WLCG_TWO
