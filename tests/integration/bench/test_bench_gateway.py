"""`msgbus bench gateway` against an embedded broker: both senders publish every
message (the gateway answers only once the broker confirmed), the push and the STOMP
subscriber receive every one, publish and pull run with and without the retention log,
the ratios print."""

from __future__ import annotations

import re

from click.testing import CliRunner

from msgbus.broker import BrokerThread
from msgbus.cli.bench_cmd import bench


def test_bench_gateway_measures_both_senders_and_prints_the_ratio(
    embedded_broker: BrokerThread,
) -> None:
    args = ["gateway", "--broker", embedded_broker.url, "--count", "300", "--batch", "50"]
    result = CliRunner().invoke(bench, [*args, "--rounds", "2"])
    assert result.exit_code == 0, result.output
    rows = re.findall(r"^(\d)\s+(.+?)\s+([\d,]+)$", result.output, re.M)
    senders = [
        "msgbus.Publisher over STOMP",
        "msgbus gateway, 50 per request",
        "STOMP subscriber, acks of 50",
        "gateway push, maxMessages 50",
        "gateway publish, 1 sub, no log",
        "gateway publish, 1 sub, into the log",
        "gateway pull+ack 50, no log",
        "gateway pull+ack 50, the log",
    ]
    assert [(r, s) for r, s, _ in rows] == [(r, s) for r in "12" for s in senders]
    assert all(int(rate.replace(",", "")) > 0 for _, _, rate in rows)
    assert re.search(r"gateway / direct STOMP: [\d.]+x \(median of 2 rounds", result.output)
    assert re.search(r"push / STOMP subscriber: [\d.]+x \(median of 2 rounds", result.output)
    for what in ("publish", "pull\\+ack"):
        ratio = rf"{what} with the retention log / without: [\d.]+x \(median of 2 rounds"
        assert re.search(ratio, result.output), result.output
    received = embedded_broker.broker.router.received
    assert received >= 2 * 4 * 300  # every message of the four runs in both rounds
