"""The whole pipeline under faults, counted message by message.

A :class:`Pipeline` writes numbered probe results (each ``summaryData`` unique), publishes
them with ``msgbus publish`` as a cron'd probe would, stores them with ``msgbus consume``
into PostgreSQL reached through a fault proxy, and at the end compares what the store holds,
by content and by ``msgbus-id``, with what the publisher reported as confirmed or spooled
(the promise covers both) and with what it reported as rejected.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from msgbus.config import load_config
from msgbus.network.local import LocalNetwork
from msgbus.store.audit import audit
from msgbus.store.database import Store
from msgbus.store.tables import dead_letters, table_for
from msgbus.transport.connection import Connection
from tests.fixtures.chaos import ChaosRow
from tests.fixtures.pipeline import MsgbusProcess, run_msgbus, wait_until
from tests.fixtures.proxy import TcpProxy

__all__ = ["Pipeline", "PublishRun", "Target", "line_target", "pipeline_for"]

PROBES = table_for("ProbeResult")
_COUNTS = re.compile(r"(\d+) confirmed, (\d+) spooled, (\d+) rejected, (\d+) failed")
_DUPLICATES = re.compile(r"duplicates (\d+)")


@dataclass
class Target:
    """Where a scenario publishes and consumes, and how its broker fails."""

    kind: str
    publish_urls: list[str]
    consume_urls: list[str]
    publish_destination: str
    consume_destination: str
    subscription: str | None = None
    kill_broker: Callable[[], None] | None = None
    """kill -9 of the broker that carries the traffic (the middle one in a line)."""
    restart_broker: Callable[[], None] | None = None
    publishes_through_faults: bool = False
    """The publisher's broker stays up while ``kill_broker`` (another one) is down."""
    connection: dict[str, str] = field(default_factory=dict)
    """connection settings beyond the URL (vhost), for the harness's own raw sends."""
    env: dict[str, str] = field(default_factory=dict)
    """Settings the commands get as MSGBUS_* variables, as a user would set them."""
    data_dir: Path | None = None
    """Where the broker keeps its store (the embedded broker's --data)."""


def line_target(net: LocalNetwork, kind: str, publish_at: Sequence[str], fault: str) -> Target:
    """brokers/line.yaml as shipped: probes publish at the brokers ``publish_at`` (failing
    over in that order) as ``probe``, the store group consumes at c as ``store``; the
    broker ``fault`` is the one killed."""
    passwords = {u.name: u.password for u in net.topology.users}

    def url(broker: str, user: str) -> str:
        ports = net.topology.broker(broker).ports
        return f"stomp://{user}:{passwords[user]}@127.0.0.1:{ports.stomp}"

    faulty = net.process(fault)
    return Target(
        kind=kind,
        publish_urls=[url(b, "probe") for b in publish_at],
        consume_urls=[url("c", "store")],
        publish_destination="/topic/VirtualTopic.grid.metrics",
        consume_destination="/queue/Consumer.store.VirtualTopic.grid.metrics",
        kill_broker=faulty.kill,
        restart_broker=faulty.start,
        publishes_through_faults=True,
        data_dir=faulty.data_dir,
    )


@dataclass
class PublishRun:
    returncode: int
    output: str
    confirmed: int
    spooled: int
    rejected: int
    failed: int


def probe_text(summary: str, details: int) -> str:
    return (
        "serviceURI: ce1.example.org\nhostName: ce1.example.org\nserviceFlavour: CE\n"
        "siteName: CHAOS-SITE\nmetricStatus: OK\nmetricName: org.sam.CE-JobSubmit\n"
        f"summaryData: {summary}\ntimestamp: 2026-12-01T00:00:00Z\n"
        f"detailsData: {'x' * details}\nEOT\n"
    )


@dataclass
class Pipeline:
    scenario: str
    target: Target
    base: Path
    store_url: str
    """How the consumer reaches the database (through the proxy)."""
    direct_store_url: str
    """How the checks read it."""
    consumer_env: dict[str, str] = field(default_factory=dict)
    accepted: set[str] = field(default_factory=set)
    rejected: set[str] = field(default_factory=set)
    given_up: set[str] = field(default_factory=set)
    """Neither delivered nor spooled, and reported so (a full spool disk): never stored;
    the audit may count them missing (the note that they were given up on needed the
    disk that was full)."""
    poison: int = 0
    """Bodies sent that must end as dead letters."""
    consumers: list[MsgbusProcess] = field(default_factory=list)
    recovered_at: float | None = None
    settled_at: float | None = None
    """When the last row came, if a wait for quiet followed it (settle_with_losses)."""
    _next: int = 0

    def __post_init__(self) -> None:
        self.spool = self.base / "spool"
        store = Store(self.direct_store_url)
        try:
            store.init()
        finally:
            store.close()

    # -- publishing ------------------------------------------------------------------------

    def summaries(self, n: int) -> list[str]:
        first, self._next = self._next, self._next + n
        return [f"chaos {self.scenario} {self.target.kind} #{i}" for i in range(first, first + n)]

    def publish(
        self,
        n: int,
        *,
        details: int = 300,
        urls: Sequence[str] | None = None,
        oversized: Sequence[int] = (),
        may_fail: bool = False,
    ) -> PublishRun:
        """``msgbus publish`` of ``n`` new results (those at ``oversized`` positions carry
        5 MiB of details); books what it reports. With ``may_fail``, messages may be
        neither delivered nor spooled (no broker, the spool's disk full): the spool kept
        the first ones."""
        names = self.summaries(n)
        sizes = [5 * 2**20 if k in oversized else details for k in range(n)]
        path = self.base / f"input-{self._next}.txt"
        path.write_text("".join(probe_text(s, d) for s, d in zip(names, sizes, strict=True)))
        args = ["publish", "--spool", str(self.spool)]
        for url in urls or self.target.publish_urls:
            args += ["--broker", url]
        done = run_msgbus(
            [*args, "--destination", self.target.publish_destination, str(path)],
            env=self.target.env,
        )
        run = self._counts(done.returncode, done.stdout)
        if run.failed and not (may_fail and run.confirmed == 0 and not oversized):
            raise AssertionError(f"msgbus publish failed messages:\n{done.stdout}")
        if run.failed:
            self.given_up |= set(names[run.spooled :])
            names = names[: run.spooled]
        big = {names[k] for k in oversized}
        if len(big) != run.rejected:
            raise AssertionError(f"expected {len(big)} rejected:\n{done.stdout}")
        self.rejected |= big
        self.accepted |= set(names) - big
        return run

    def publish_through(self, fault: Callable[[], None], chunk: int, runs: int = 5) -> None:
        """``runs`` runs of ``msgbus publish`` of ``chunk`` results each, in the
        background; ``fault`` once the store holds half a run. Every run must get
        through: the publisher fails over to another broker."""
        done: list[PublishRun] = []
        publishing = threading.Thread(
            target=lambda: done.extend(self.publish(chunk) for _ in range(runs))
        )
        publishing.start()
        wait_until(lambda: self.stored_count() >= chunk // 2, 60, "the first rows")
        fault()
        publishing.join(180)
        assert not publishing.is_alive(), f"msgbus publish hung through the fault ({self.scenario})"
        assert all(r.returncode == 0 and r.failed == 0 for r in done), [r.output for r in done]

    def drain_spool(self, urls: Sequence[str] | None = None) -> str:
        args = ["spool", "drain", "--spool", str(self.spool)]
        for url in urls or self.target.publish_urls:
            args += ["--broker", url]
        done = run_msgbus(args, env=self.target.env)
        assert done.returncode == 0, done.stdout
        return done.stdout

    @staticmethod
    def _counts(returncode: int, output: str) -> PublishRun:
        found = _COUNTS.search(output)
        if found is None:
            raise AssertionError(f"no counts from msgbus publish (exit {returncode}):\n{output}")
        confirmed, spooled, rejected, failed = (int(g) for g in found.groups())
        return PublishRun(returncode, output, confirmed, spooled, rejected, failed)

    def send_poison(self, bodies: Sequence[bytes]) -> None:
        """Send bodies no valid message can come from, as a foreign producer would
        (``msgbus publish`` validates first); each must end as one dead letter."""
        config = load_config(
            None,
            {"connection": {"brokers": self.target.publish_urls[:1], **self.target.connection}},
        )
        conn = Connection(config.connection.brokers[0], config.connection)
        conn.connect()
        try:
            for k, body in enumerate(bodies):
                headers = {"persistent": "true", "msgbus-id": f"poison-{self.scenario}-{k}"}
                conn.send(self.target.publish_destination, body, headers, receipt=f"p{k}")
                conn.wait_for_receipt(f"p{k}", 30)
        finally:
            conn.disconnect()
        self.poison += len(bodies)

    # -- consuming -------------------------------------------------------------------------

    def start_consumer(self) -> MsgbusProcess:
        args = ["consume", "--store", self.store_url, "--batch", "100", "--max-wait", "0.2"]
        for url in self.target.consume_urls:
            args += ["--broker", url]
        args += ["--destination", self.target.consume_destination]
        if self.target.subscription:
            args += ["--subscription", self.target.subscription]
        log = self.base / f"consume-{len(self.consumers)}.log"
        consumer = MsgbusProcess(log, args, {**self.target.env, **self.consumer_env})
        self.consumers.append(consumer)
        consumer.wait_for_output("consuming ")
        return consumer

    # -- checking --------------------------------------------------------------------------

    def stored(self) -> tuple[Counter[str], int, int]:
        """Rows per summary, distinct msgbus-ids among the rows, dead letters."""
        store = Store(self.direct_store_url)
        try:
            with store.engine.connect() as conn:
                rows = conn.execute(sa.select(PROBES.c.message, PROBES.c.msg_id)).all()
                dead = conn.execute(sa.select(sa.func.count()).select_from(dead_letters))
                dead_count = int(dead.scalar_one())
        finally:
            store.close()
        summaries = Counter(json.loads(message)["summaryData"] for message, _ in rows)
        return summaries, len({msg_id for _, msg_id in rows}), dead_count

    def stored_count(self) -> int:
        return sum(self.stored()[0].values())

    def audited_missing(self) -> int:
        """What the completeness ledger says is missing (``msgbus audit``'s number)."""
        store = Store(self.direct_store_url)
        try:
            return audit(store, now=datetime.now(timezone.utc)).missing
        finally:
            store.close()

    def recovered(self) -> None:
        """The fault is repaired: recovery time counts from here."""
        self.recovered_at = time.monotonic()

    def settle(self, timeout: float = 120) -> None:
        """Wait until every accepted message is stored, then stop the consumers."""

        def complete() -> bool:
            summaries, _, dead = self.stored()
            # A gap a late message or sync record still closes must not be read too soon.
            stored = self.accepted <= set(summaries) and dead >= self.poison
            return stored and self.audited_missing() <= len(self.given_up)

        try:
            wait_until(complete, timeout, f"{len(self.accepted)} rows ({self.scenario})")
        finally:
            for consumer in self.consumers:
                consumer.stop()

    def settle_with_losses(self, after: set[str], quiet: float = 10, timeout: float = 120) -> None:
        """For a fault that may lose messages (a broker's disk, on an engine that does not
        replicate): wait until the messages in ``after`` (published once the fault was
        repaired) are stored and no row has come for ``quiet`` seconds, then stop the
        consumers. What is still missing then is lost."""
        seen = [-1, time.monotonic()]

        def quiet_now() -> bool:
            summaries, _, _ = self.stored()
            total = sum(summaries.values())
            if total != seen[0]:
                seen[:] = [total, time.monotonic()]
            return after <= set(summaries) and time.monotonic() - seen[1] >= quiet

        try:
            wait_until(quiet_now, timeout, f"{len(after)} rows after the repair ({self.scenario})")
            self.settled_at = seen[1]  # the last row, not the end of the quiet wait
        finally:
            for consumer in self.consumers:
                consumer.stop()

    def verify(self, *, may_lose: bool = False) -> ChaosRow:
        """The table row; raises unless every accepted message is stored exactly once
        and nothing else is. With ``may_lose``, accepted messages may be missing (the
        row counts them), but none twice, nothing unconfirmed, and the audit must not
        report more missing than that."""
        summaries, distinct_ids, dead = self.stored()
        until = self.settled_at or time.monotonic()
        recovery = until - self.recovered_at if self.recovered_at else None
        row = ChaosRow(
            scenario=self.scenario,
            broker=self.target.kind,
            sent=self._next,
            confirmed=len(self.accepted),
            rejected=len(self.rejected),
            stored=len(set(summaries) & self.accepted),
            dead_letters=dead,
            duplicates_dropped=sum(
                int(m.group(1))
                for c in self.consumers
                for m in [_DUPLICATES.search(c.output())]
                if m is not None
            ),
            duplicate_rows=sum(n - 1 for n in summaries.values() if n > 1),
            lost=len(self.accepted - set(summaries)),
            audit_missing=self.audited_missing(),
            recovery_s=recovery,
        )
        unexpected = set(summaries) - self.accepted
        problems = []
        if row.lost and not may_lose:
            problems.append(f"{row.lost} confirmed messages not stored")
        if row.duplicate_rows:
            problems.append(f"{row.duplicate_rows} duplicate rows")
        if distinct_ids != sum(summaries.values()):
            problems.append("rows share a msgbus-id")
        if unexpected:
            problems.append(f"rows nobody confirmed: {sorted(unexpected)[:5]}")
        if dead != self.poison:
            problems.append(f"{dead} dead letters, {self.poison} expected")
        if row.audit_missing > len(self.given_up) + (row.lost if may_lose else 0):
            problems.append(
                f"msgbus audit reports {row.audit_missing} missing, {row.lost} were lost and "
                f"{len(self.given_up)} given up on"
            )
        assert not problems, f"{row}: " + "; ".join(problems)
        return row


@contextlib.contextmanager
def pipeline_for(
    request: pytest.FixtureRequest,
    target: Target,
    postgres_url: str,
    db_proxy: TcpProxy,
    base: Path,
    consumer_env: Mapping[str, str] | None = None,
) -> Iterator[Pipeline]:
    """The test's pipeline, named after it, its consumers reaching the database through
    ``db_proxy``; consumers still running at the end are killed."""
    scenario = request.node.originalname.removeprefix("test_").replace("_", "-")
    through_proxy = postgres_url.replace(":5432/", f":{db_proxy.port}/")
    pipe = Pipeline(scenario, target, base, through_proxy, postgres_url, dict(consumer_env or {}))
    try:
        yield pipe
    finally:
        for consumer in pipe.consumers:
            consumer.kill()
