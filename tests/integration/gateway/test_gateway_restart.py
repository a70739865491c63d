"""What ``msgbus gateway`` counts and lists outlives the process: AMS ACLs, topic and
subscription ``:metrics`` and push counts are where they were after the gateway is
killed outright (SIGKILL, a second after the last request: counts are written at most
once a second) and started again on the same ``state_dir``, with argo-ams-library for
the ACLs and plain HTTP for ``:metrics`` (the library has no call for them)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from argo_ams_library import AmsMessage  # type: ignore[import-untyped]

from tests.chaos.harness import probe_text
from tests.fixtures.gateway import (
    GROUPS,
    READER,
    Gateway,
    ams_metrics,
    start_gateway,
)
from tests.fixtures.pki import Pki


def _counts(gateway: Gateway, path: str) -> dict[str, Any]:
    return {
        name: m["timeseries"] if name.endswith("daily_messages") else m["timeseries"][0]["value"]
        for name, m in ams_metrics(gateway, path).items()
    }


def _restarted(gateway: Gateway, pki: Pki, base: Path) -> Gateway:
    gateway.process.kill()
    section = yaml.safe_load((base / "gateway.yaml").read_text())["gateway"]
    del section["project"]
    return start_gateway(base, pki, gateway.broker_url, section)


@pytest.mark.parametrize("ams_gateway", [GROUPS], indirect=True, ids=["acl"])
def test_acls_and_counts_are_where_they_were_after_a_killed_gateway_starts_again(
    ams_gateway: Gateway, pki: Pki, tmp_path: Path
) -> None:
    probe, reader = ams_gateway.ams(), ams_gateway.ams(READER)
    probe.create_topic("kept")
    reader.create_sub("db", "kept", ackdeadline=60)
    probe.modifyacl_topic("kept", ["reader"])
    probe.modifyacl_sub("db", ["probe"])
    for first, end in ((0, 3), (3, 5)):
        texts = [probe_text(f"#{i}", i) for i in range(first, end)]
        probe.publish("kept", [AmsMessage(data=t) for t in texts])
    pulled: list[Any] = []
    deadline = time.monotonic() + 30
    while len(pulled) < 5 and time.monotonic() < deadline:
        pulled += reader.pull_sub("db", num=5)
    reader.ack_sub("db", [ack for ack, _ in pulled])
    topic, sub = _counts(ams_gateway, "/topics/kept"), _counts(ams_gateway, "/subscriptions/db")
    assert topic["topic.number_of_messages"] == sub["subscription.number_of_messages"] == 5
    time.sleep(1.5)  # the counts are written at most once a second

    again = _restarted(ams_gateway, pki, tmp_path)
    try:
        assert _counts(again, "/topics/kept") == topic
        assert _counts(again, "/subscriptions/db") == sub
        probe = again.ams()
        assert probe.getacl_topic("kept") == {"authorized_users": ["probe", "reader"]}
        assert probe.getacl_sub("db") == {"authorized_users": ["probe", "reader"]}
        # Counting goes on from there.
        probe.publish("kept", [AmsMessage(data=probe_text("after", 1))])
        assert _counts(again, "/topics/kept")["topic.number_of_messages"] == 6
    finally:
        again.process.stop()
