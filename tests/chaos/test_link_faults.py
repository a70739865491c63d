"""Long-running commands through a broker kill -9, as users run them: ``msgbus
nagios-bridge`` (into a command file) and ``msgbus gateway`` (AMS clients over HTTPS).

Each keeps running across the broker's death and restart (their managed link reconnects
with back-off and makes their durable subscriptions again), and every message confirmed
to a producer comes out exactly once: as a passive check line in Nagios' command file,
or pulled by an AMS client. Rows go into the fault suite's table.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from argo_ams_library import AmsException, AmsMessage  # type: ignore[import-untyped]

from tests.chaos.harness import Pipeline, PublishRun, probe_text
from tests.fixtures.chaos import ChaosRow
from tests.fixtures.gateway import TOKEN, start_gateway
from tests.fixtures.pipeline import MsgbusProcess, run_msgbus, wait_until
from tests.fixtures.pki import Pki

pytestmark = [pytest.mark.chaos]

CHUNK = 200
KINDS = ["embedded", pytest.param("activemq", marks=pytest.mark.activemq)]


@dataclass
class Broker:
    """A broker the test may kill -9 and start again on the same port and data."""

    kind: str
    url: str
    kill: Callable[[], None]
    start: Callable[[], None]


@pytest.fixture(params=KINDS)
def broker(request: pytest.FixtureRequest) -> Broker:
    if request.param == "embedded":
        embedded = request.getfixturevalue("embedded_broker_process")()
        return Broker("embedded", embedded.stomp_url, embedded.kill, embedded.start)
    activemq = request.getfixturevalue("activemq_broker_factory")()
    return Broker("activemq", activemq.stomp_url, activemq.kill, activemq.start)


@dataclass
class Probes:
    """Numbered probe results published with ``msgbus publish`` (spooling while no
    broker answers); ``accepted`` is what it confirmed or spooled."""

    base: Path
    url: str
    destination: str
    scenario: str
    sent: int = 0

    def __post_init__(self) -> None:
        self.accepted: set[str] = set()

    def publish(self, n: int) -> PublishRun:
        names = [f"chaos {self.scenario} #{i}" for i in range(self.sent, self.sent + n)]
        self.sent += n
        path = self.base / f"input-{self.sent}.txt"
        path.write_text("".join(probe_text(name, 100) for name in names))
        done = run_msgbus(
            ["publish", "--spool", str(self.base / "spool"), "--broker", self.url,
             "--destination", self.destination, str(path)]
        )  # fmt: skip
        run = Pipeline._counts(done.returncode, done.stdout)
        assert run.returncode == 0 and run.confirmed + run.spooled == n, done.stdout
        self.accepted |= set(names)
        return run


def _row(
    scenario: str, broker: Broker, sent: int, accepted: set[str], seen: Counter[str], at: float
) -> ChaosRow:
    return ChaosRow(
        scenario=scenario,
        broker=broker.kind,
        sent=sent,
        confirmed=len(accepted),
        rejected=0,
        stored=len(set(seen) & accepted),
        dead_letters=0,
        duplicates_dropped=0,
        duplicate_rows=sum(n - 1 for n in seen.values() if n > 1),
        lost=len(accepted - set(seen)),
        audit_missing=0,
        recovery_s=time.monotonic() - at,
    )


def _checked(row: ChaosRow, unexpected: set[str]) -> ChaosRow:
    assert not row.lost and not row.duplicate_rows and not unexpected, (row, sorted(unexpected))
    return row


def _survived(process: MsgbusProcess, link: str) -> None:
    """Still running, and said once that the link was lost and once that it is back."""
    out = process.output()
    assert process.running(), out
    assert out.count(f"{link} lost:") == 1, out
    assert out.count(f"{link}: connected again") == 1, out


def _summaries(command_file: Path) -> Counter[str]:
    """The check results in Nagios' command file, by summary (the output's first line).

    A line the bridge is still writing is left out: a regular file's reader can see the
    part of a write that fits the first page before the rest (CI saw such a half line)."""
    lines = command_file.read_text().split("\n")[:-1]
    return Counter(line.split(";", 4)[4].split("\\n", 1)[0] for line in lines)


def test_nagios_bridge_through_a_broker_kill(
    broker: Broker, tmp_path: Path, chaos_table: list[ChaosRow]
) -> None:
    """The bridge follows a durable subscription into a command file (a plain file takes
    the lines as Nagios' FIFO does); the broker dies while it works through a backlog,
    results are spooled meanwhile, and after the restart every one is in the file once."""
    topic = f"/topic/chaos.{uuid.uuid4().hex[:8]}"
    commands = tmp_path / "nagios.cmd"
    commands.touch()
    bridge = MsgbusProcess(
        tmp_path / "bridge.log",
        ["nagios-bridge", "--broker", broker.url, "--destination", topic,
         "--subscription", "chaos-nagios", "--command-file", str(commands)],
        {"MSGBUS_CONNECTION__RECONNECT_MAX_DELAY": "5"},
    )  # fmt: skip
    try:
        bridge.wait_for_output("bridging ")
        probes = Probes(tmp_path, broker.url, topic, f"bridge {broker.kind}")
        probes.publish(CHUNK * 5)
        wait_until(lambda: bool(_summaries(commands)), 60, "the first check results")
        broker.kill()
        down = probes.publish(CHUNK)
        assert down.spooled == CHUNK, down.output
        bridge.wait_for_output("broker connection lost:")  # and still running
        broker.start()
        recovered = time.monotonic()
        probes.publish(CHUNK)  # drains the spool first

        def complete() -> bool:
            return probes.accepted <= set(_summaries(commands))

        wait_until(complete, 180, f"{len(probes.accepted)} check results")
        time.sleep(1)  # anything redelivered late would show now
        _survived(bridge, "nagios-bridge: broker connection")
    finally:
        bridge.stop()
    seen = _summaries(commands)
    row = _row("nagios-bridge-broker-killed", broker, probes.sent, probes.accepted, seen, recovered)
    chaos_table.append(_checked(row, set(seen) - probes.accepted))


def _messages(tag: str, first: int, n: int) -> list[AmsMessage]:
    return [
        AmsMessage(data=probe_text(f"{tag} #{i}", 100), attributes={})
        for i in range(first, first + n)
    ]


def test_gateway_through_a_broker_kill(
    broker: Broker,
    tmp_path: Path,
    pki: Pki,
    monkeypatch: pytest.MonkeyPatch,
    chaos_table: list[ChaosRow],
) -> None:
    """AMS clients publish and pull through the gateway; the broker dies: requests are
    answered at once (503, no hang) while it is away, and after the restart the same
    subscription delivers everything published before and after, each message once."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki.ca))
    users = {"probe": {"token": TOKEN, "dn": "CN=probe"}}
    gateway = start_gateway(tmp_path, pki, broker.url, {"users": users})
    ams = gateway.ams()
    tag = f"gateway {broker.kind}"
    published: dict[str, str] = {}
    pulled: Counter[str] = Counter()

    def publish(first: int, n: int) -> None:
        for start in range(first, first + n, 100):
            messages = _messages(tag, start, min(100, first + n - start))
            ids = ams.publish("probes", messages)["messageIds"]
            published.update(zip(ids, [m.get_data() for m in messages], strict=True))

    def pull() -> int:
        batch = ams.pull_sub("chaos", num=100, return_immediately=True)
        for _, message in batch:
            pulled[message.get_msgid()] += 1
        if batch:
            ams.ack_sub("chaos", [ack_id for ack_id, _ in batch])
        return len(batch)

    def drained() -> bool:
        try:
            pull()
        except AmsException:
            return False  # the link backs off a moment after the restart
        return set(published) <= set(pulled)

    try:
        ams.create_topic("probes")
        ams.create_sub("chaos", "probes", ackdeadline=60)
        publish(0, CHUNK * 2)
        # All pulled and acknowledged: the link is up, nothing waits in its prefetch.
        wait_until(drained, 60, "the first messages pulled")
        time.sleep(1)  # the broker has the acknowledgements before it dies
        broker.kill()

        def refused() -> bool:
            asked = time.monotonic()
            try:
                assert ams.pull_sub("chaos", num=10, return_immediately=True) == []
            except AmsException:
                return True
            finally:
                took = time.monotonic() - asked
                assert took < 15, f"a request took {took:.1f} s while the broker was away"
            return False

        wait_until(refused, 60, "the gateway to answer that the broker is away")
        broker.start()
        recovered = time.monotonic()
        publish(CHUNK * 2, CHUNK)

        wait_until(drained, 120, f"{len(published)} messages pulled")
        assert pull() == 0  # nothing more, nothing twice
        _survived(gateway.process, "gateway: subscription chaos")
    finally:
        gateway.process.stop()
    row = _row("gateway-broker-killed", broker, CHUNK * 3, set(published), pulled, recovered)
    chaos_table.append(_checked(row, set(pulled) - set(published)))
