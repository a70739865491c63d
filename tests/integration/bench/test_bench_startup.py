"""`msgbus bench startup`: every command of the comparison runs to completion against a
real broker (a failing child is an error, never a time), and the table shows each."""

from __future__ import annotations

import re

from click.testing import CliRunner

from msgbus.bench.startup import BASELINE
from msgbus.broker import BrokerConfig, BrokerThread
from msgbus.cli.bench_cmd import bench

ROWS = [
    "python -c pass",
    "python -c 'import stomp'",
    BASELINE,
    "msgbus publish one.txt",
    "msgbus probe -- check_ok",
    "msgbus --help",
    "msgbus publish --help",
]


def test_startup_bench_on_the_embedded_broker() -> None:
    result = CliRunner().invoke(bench, ["startup", "--rounds", "1"])
    assert result.exit_code == 0, result.output
    rows = re.findall(r"^(.+?)\s+[\d.]+\s+[\d.]+\s+([\d.]+x)\s+([\d.]+x)$", result.output, re.M)
    assert [name for name, _, _ in rows] == ROWS, result.output
    assert rows[ROWS.index(BASELINE)][1:] == ("1.00x", "1.00x")


def test_a_command_that_fails_is_reported_not_timed() -> None:
    with BrokerThread(BrokerConfig(port=0, users={"site": "secret"})) as broker:
        # Wrong password: the stomp.py sender and msgbus publish are refused.
        url = f"stomp://site:wrong@127.0.0.1:{broker.port}"
        result = CliRunner().invoke(bench, ["startup", "--rounds", "1", "--broker", url])
    assert result.exit_code != 0
    assert "exited" in str(result.exception), result.output
