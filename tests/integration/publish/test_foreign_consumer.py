"""A consumer that is not msgbus (APEL's SSM receiver, any stomp.py client) receives
exactly the messages ``msgbus publish`` was given: the end of a run rides on the run's
last message as headers, never as a message of its own (issue 23: SSM put the sync
record msgbus used to send in its reject queue)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from msgbus.stomp.headers import LAST_HEADER, SYNC_HEADER
from msgbus.transport.url import BrokerURL
from tests.chaos.harness import probe_text
from tests.fixtures.pipeline import run_msgbus
from tests.integration.conformance.clients import Client, Target


def _foreign_subscriber(
    url: str, destination: str, expected: int, selector: str | None = None
) -> list[dict[str, str]]:
    """The headers of every message a stomp.py subscriber (with ``selector``, if given)
    gets on ``destination``: the ``expected`` ones, then whatever else comes within a
    quiet second."""
    parsed = BrokerURL.model_validate(url)
    client = Client(Target("foreign", parsed.host, parsed.port))
    try:
        extra = {"selector": selector} if selector else {}
        client.conn.subscribe(destination, id="ssm", ack="auto", headers=extra)
        frames = client.messages(expected) + client.quiet(1.5)
    finally:
        client.close()
    return [dict(frame.headers) for frame in frames]


def _results(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "results.txt"
    path.write_text("".join(probe_text(f"foreign #{i}", 10) for i in range(n)))
    return path


@pytest.mark.parametrize(("pack", "bodies"), [(1, 25), (10, 3)])
def test_a_stomp_py_subscriber_gets_exactly_the_published_messages(
    tmp_path: Path, embedded_or_activemq: str, pack: int, bodies: int
) -> None:
    url, destination = embedded_or_activemq, f"/queue/foreign.{tmp_path.name}"
    args = ["publish", "--broker", url, "--destination", destination, "--pack", str(pack)]
    done = run_msgbus([*args, "--spool", str(tmp_path / "spool"), str(_results(tmp_path, 25))])
    assert done.returncode == 0 and "25 confirmed" in done.stdout, done.stdout
    got = _foreign_subscriber(url, destination, bodies)
    assert len(got) == bodies and not any(SYNC_HEADER in h for h in got)
    assert sum(int(h.get("recordCount", "1")) for h in got) == 25
    # Lean wire: only the run's last message carries its end.
    assert [h.get(LAST_HEADER) for h in got] == [None] * (bodies - 1) + [str(bodies)]


@pytest.mark.parametrize("selectors", ["true", "false"])
def test_selector_headers_are_what_a_selecting_subscriber_filters_on(
    tmp_path: Path, embedded_or_activemq: str, selectors: str
) -> None:
    url, destination = embedded_or_activemq, f"/queue/foreign.sel.{tmp_path.name}"
    args = ["publish", "--broker", url, "--destination", destination]
    env = {"MSGBUS_PUBLISHER__SELECTORS": selectors}
    done = run_msgbus(
        [*args, "--spool", str(tmp_path / "spool"), str(_results(tmp_path, 4))], env=env
    )
    assert done.returncode == 0 and "4 confirmed" in done.stdout, done.stdout
    got = _foreign_subscriber(
        url, destination, 4 if selectors == "true" else 0, "metricStatus = 'OK'"
    )
    if selectors == "true":
        assert [h["metricStatus"] for h in got] == ["OK"] * 4
    else:  # nothing to select on: the selecting subscriber gets nothing, a plain one all
        assert got == []
        plain = _foreign_subscriber(url, destination, 4)
        assert len(plain) == 4 and not any("metricStatus" in h for h in plain)


def test_an_offline_run_drained_later_brings_exactly_its_messages(
    tmp_path: Path, embedded_or_activemq: str
) -> None:
    url, destination = embedded_or_activemq, f"/queue/foreign.spooled.{tmp_path.name}"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"stomp://127.0.0.1:{sock.getsockname()[1]}"
    spool = str(tmp_path / "spool")
    offline = run_msgbus(
        ["publish", "--broker", closed, "--destination", destination, "--spool", spool,
         str(_results(tmp_path, 7))],
        env={**os.environ, "MSGBUS_PUBLISHER__RETRY_FOR": "0"},
    )  # fmt: skip
    assert offline.returncode == 0 and "7 spooled" in offline.stdout, offline.stdout
    drained = run_msgbus(["spool", "drain", "--broker", url, "--spool", spool])
    assert drained.returncode == 0, drained.stdout
    got = _foreign_subscriber(url, destination, 7)
    assert [h.get(LAST_HEADER) for h in got] == [None] * 6 + ["7"]
