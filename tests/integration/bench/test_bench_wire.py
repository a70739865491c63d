"""`msgbus bench wire` against a real ActiveMQ: every sender's frames all arrive, the
msgbus frames are the ones the publisher writes, and the ratios are to the bare sender."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from msgbus.bench.publish import probe_files
from msgbus.bench.wire import BARE, senders
from msgbus.cli.bench_cmd import bench
from msgbus.stomp import FrameParser
from msgbus.stomp.frames import Frame
from msgbus.stomp.headers import read_number
from tests.fixtures.activemq import ActiveMQ

SELECTORS = {"siteName", "metricName", "metricStatus", "hostName", "serviceFlavour"}


def _frames(sender: str, bodies: list[bytes]) -> list[Frame]:
    units, receipts = senders()[sender](bodies, "/queue/x")
    frames = FrameParser(role="server").feed(b"".join(units))
    assert receipts == sum(1 for f in frames if isinstance(f, Frame) and "receipt" in f.headers)
    return [f for f in frames if isinstance(f, Frame)]


def test_the_default_msgbus_frame_carries_selectors_id_and_one_number(tmp_path: Path) -> None:
    bodies = probe_files(tmp_path, 3000)
    units = _frames("msgbus: wire compact, confirm transaction (default)", bodies)
    assert [f.command for f in units if f.command != "SEND"] == ["BEGIN", "COMMIT"] * 2
    frames = [f for f in units if f.command == "SEND"]
    assert len(frames) == 3000
    ours = {"destination", "persistent", "content-length", "msgbus-id", "msgbus-seq"}
    ours |= {"transaction"}
    assert {frozenset(f.headers) for f in frames} == {frozenset(ours | SELECTORS)}
    cumulative = _frames("msgbus: wire compact, confirm cumulative", bodies)
    assert [f.command for f in cumulative] == ["SEND"] * 3000
    numbers = [read_number(f.headers) for f in frames]
    assert [n and n[2] for n in numbers] == list(range(1, 3001))
    before = _frames("msgbus: wire legacy, confirm transaction (before)", bodies)
    assert [f.command for f in before].count("COMMIT") == 2  # units of 2048
    bare = _frames(BARE, bodies)
    assert {frozenset(f.headers) - {"receipt"} for f in bare} == {
        frozenset({"destination", "persistent", "content-length"})
    }


def test_bench_wire_reports_every_sender_against_the_bare_one(activemq: ActiveMQ) -> None:
    url = f"stomp://{activemq.host}:{activemq.port}"
    result = CliRunner().invoke(bench, ["wire", "--broker", url, "--count", "300", "--rounds", "1"])
    assert result.exit_code == 0, result.output
    rows = {
        m.group(1): (int(m.group(2).replace(",", "")), float(m.group(3)))
        for m in re.finditer(r"^(.+?)\s+([\d,]+)\s+([\d.]+)x\s+n/a\s+-$", result.output, re.M)
    }
    assert rows.keys() == senders().keys()
    assert rows[BARE][1] == 1.0
    for rate, vs_bare in rows.values():
        assert rate > 0 and abs(vs_bare - rate / rows[BARE][0]) < 0.01
