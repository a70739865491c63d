"""``msgbus bench sites``: many sites at once, each its own STOMP connection.

Every site holds one connection with heart-beats and publishes persistent probe results
with a receipt each, numbered per site as msgbus publishers number them, to a virtual
topic; ``msgbus consume`` processes (one per broker of the consumer group) store them.
The site rate is ``sites x metrics / interval``: a steady phase at that rate, then a
burst at ``burst_factor`` times it, then the backlog drains. Measured: broker memory per
idle connection, and per phase the rate confirmed, the latency to the RECEIPT and to the
row (the send time against the row's ``received_at``), broker CPU and peak memory; then
the drain time. Every confirmed message must be stored. Before the sites connect, the
persistent rate of one connection is measured on the same broker (``msgbus bench
broker``'s workload): the burst's confirmed rate is reported against it.

The load comes from one asyncio process on the sans-IO codec (no thread per site), the
brokers and consumers run in processes of their own, all on this machine: what the
brokers report is shared with the load generator's and the consumers' CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timezone
from pathlib import Path

import sqlalchemy as sa

from msgbus.bench.broker import Endpoint, Measurement, cpu_seconds, embedded_broker, measure
from msgbus.bench.consume import probe_body
from msgbus.errors import ConfigError, ConnectError, MsgbusError, TimeoutException
from msgbus.network.local import LocalNetwork
from msgbus.network.topology import load_topology
from msgbus.schema.models import ProbeResult
from msgbus.stomp import HeartBeats, StompSession
from msgbus.stomp.frames import DisconnectFrame, Frame, SendFrame
from msgbus.stomp.headers import ID_HEADER, SEQ_HEADER, compact_number
from msgbus.store.database import Store
from msgbus.store.tables import table_for

__all__ = ["SitesPlan", "SitesReport", "Target", "embedded_target", "network_target", "run"]

_PROBES = table_for(ProbeResult.message_class)
_CONNECTING = 50  # connects in flight: a broker closes the oldest unauthenticated sockets
_QUIET = 60.0  # seconds without a receipt or a row that end the drain
_RSS_EVERY = 0.25  # seconds between two readings of the brokers' memory


@dataclass(frozen=True, kw_only=True)
class SitesPlan:
    sites: int
    metrics: int = 100
    interval: float = 300.0
    steady: float = 60.0
    burst_factor: float = 10.0
    burst: float = 30.0
    heartbeat_ms: int = 30_000
    size: int = 1024
    drain_timeout: float = 900.0
    single: int = 20_000  # messages of the one-connection measurement (0: none)

    @property
    def rate(self) -> float:
        """Results per second of all sites together, on average."""
        return self.sites * self.metrics / self.interval


@dataclass(frozen=True)
class Target:
    """Brokers the sites spread over, and those the store's consumers attach to."""

    name: str
    sites_on: list[Endpoint]
    store_on: list[Endpoint]
    topic: str  # where sites publish
    queue: str  # the consumer group's queue

    @property
    def pids(self) -> list[int]:
        return sorted({e.pid for e in self.sites_on + self.store_on if e.pid is not None})


@dataclass
class Phase:
    name: str
    offered: float  # msgs/s planned
    seconds: float
    sent: int = 0  # handed to the sites' sockets
    began: float = 0.0  # wall clock
    ended: float = 0.0
    accepted: int = 0  # receipts that came back within the phase
    cpu: float | None = None  # broker cores used (CPU seconds per second)
    latency: tuple[float, float] = (float("nan"), float("nan"))  # p50, p99 to the row
    confirm: tuple[float, float] = (float("nan"), float("nan"))  # p50, p99 to the RECEIPT
    peak_rss_mib: float | None = None  # of all brokers together, read every _RSS_EVERY s

    def during(self, at: float) -> bool:
        return self.began <= at <= self.ended


@dataclass
class SitesReport:
    target: str
    sites: int
    connected: int
    connect_seconds: float
    connect_errors: list[str]
    rss_kib_per_connection: float | None
    peak_rss_mib: float | None  # of all brokers together
    phases: list[Phase]
    sent: int
    confirmed: int
    refused: list[str]
    stored: int
    unconfirmed: int  # sent, never confirmed (refused, or its receipt never came)
    missing: int  # confirmed, not stored
    backlog: int  # confirmed and not yet stored when the last phase ended
    drain_seconds: float  # from the end of the last phase to the last row
    single: Measurement | None  # one connection's persistent rate, same broker, same run
    single_note: str  # why it is None

    def burst_ratio(self) -> float | None:
        """Confirmed rate in the burst over the one-connection persistent rate."""
        burst = next((p for p in self.phases if p.name == "burst"), None)
        if burst is None or self.single is None:
            return None
        return burst.accepted / burst.seconds / self.single.rate


class _Site(asyncio.Protocol):
    """One site's connection: CONNECT, then SENDs with receipts; counts what comes back."""

    def __init__(self, run: _Run, name: str, endpoint: Endpoint) -> None:
        self.run, self.name, self.endpoint = run, name, endpoint
        self.stomp = StompSession("client")
        self.transport: asyncio.Transport | None = None
        self.connected: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.seq = 0
        self.last_write = time.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        every = self.run.plan.heartbeat_ms
        beats = HeartBeats(send_ms=every, receive_ms=every)
        connect = self.stomp.connect_frame(
            host=self.endpoint.host,
            heartbeats=beats,
            login=self.endpoint.login,
            passcode=self.endpoint.passcode,
        )
        self._write(self.stomp.encode(connect))

    def data_received(self, data: bytes) -> None:
        for event in self.stomp.receive_data(data):
            if not isinstance(event, Frame):
                continue
            if event.command == "CONNECTED":
                self.connected.set_result(None)
            elif event.command == "RECEIPT":
                self.run.confirm(event.headers.get("receipt-id", ""))
            elif event.command == "ERROR":
                self._failed(event.headers.get("message", "ERROR frame"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._failed(f"connection lost: {exc or 'closed by the broker'}")

    def _failed(self, why: str) -> None:
        if not self.connected.done():
            self.connected.set_exception(ConnectError(f"{self.name}: {why}"))
        elif self.transport is not None:
            self.run.refused.append(f"{self.name}: {why}")
        self.transport = None

    def _write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)
            self.last_write = time.monotonic()

    def publish(self, topic: str, body: bytes, headers: dict[str, str]) -> str | None:
        """Send the site's next result; its message id, or None when the site is down."""
        if self.transport is None:
            return None
        self.seq += 1
        msg_id = f"{self.name}-{self.seq}"
        frame_headers = {
            **headers,
            "destination": topic,
            "persistent": "true",
            "receipt": msg_id,
            ID_HEADER: msg_id,
            SEQ_HEADER: compact_number(self.name, 1, self.seq),
        }
        self._write(self.stomp.encode(SendFrame(frame_headers, body)))
        return msg_id

    def beat(self, every: float) -> None:
        if time.monotonic() - self.last_write >= every:
            self._write(b"\n")

    def close(self) -> None:
        if self.transport is not None:
            transport, self.transport = self.transport, None
            transport.write(self.stomp.encode(DisconnectFrame()))
            transport.close()


@dataclass
class _Run:
    plan: SitesPlan
    target: Target
    sent: dict[str, float] = field(default_factory=dict)  # message id -> wall time sent
    confirmed: dict[str, float] = field(default_factory=dict)  # message id -> wall time
    refused: list[str] = field(default_factory=list)

    def confirm(self, msg_id: str) -> None:
        self.confirmed[msg_id] = time.time()


def _status_kib(pid: int, key: str = "VmRSS") -> int:
    """A memory figure of ``/proc/PID/status`` (VmRSS now, VmHWM at its peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    return 0


def _total(values: list[float | None]) -> float | None:
    return None if any(v is None for v in values) else sum(v for v in values if v is not None)


async def _open(site: _Site) -> None:
    """Connect ``site`` and wait for its CONNECTED."""
    loop = asyncio.get_running_loop()
    await loop.create_connection(lambda: site, site.endpoint.host, site.endpoint.port)
    await asyncio.wait_for(site.connected, 60)


async def _connect_all(run: _Run, tag: str) -> tuple[list[_Site], list[str]]:
    gate = asyncio.Semaphore(_CONNECTING)
    errors: list[str] = []

    async def one(i: int) -> _Site | None:
        endpoint = run.target.sites_on[i % len(run.target.sites_on)]
        site = _Site(run, f"{tag}-s{i:05d}", endpoint)
        async with gate:
            try:
                await _open(site)
            except (OSError, ConnectError, TimeoutError) as exc:
                errors.append(f"{site.name}: {exc or type(exc).__name__}")
                site.close()
                return None
        return site

    found = await asyncio.gather(*(one(i) for i in range(run.plan.sites)))
    return [s for s in found if s is not None], errors


async def _offer(
    run: _Run, sites: list[_Site], phase: Phase, body: bytes, headers: dict[str, str]
) -> None:
    """Send at ``phase.offered`` msgs/s for ``phase.seconds``, round-robin over the sites;
    what the generator cannot send in time is not sent (``phase.sent`` tells)."""
    turn = itertools.cycle(sites)
    loop = asyncio.get_running_loop()
    start, turns = loop.time(), 0
    while (now := loop.time()) < start + phase.seconds:
        due = int(phase.offered * (now - start)) - turns
        wall = time.time()
        for _ in range(due):
            msg_id = next(turn).publish(run.target.topic, body, headers)
            if msg_id is not None:  # a site cut off sends nothing
                run.sent[msg_id] = wall
                phase.sent += 1
        turns += due
        await asyncio.sleep(0.01)


async def _beat(sites: list[_Site], every: float) -> None:
    while True:
        await asyncio.sleep(every / 4)
        for site in sites:
            site.beat(every / 2)


async def _drain(run: _Run, store: Store, tag: str) -> None:
    """Wait until every confirmed message is stored and every send confirmed, or until
    neither moved for a minute (a receipt held back by flow control, or gone with its
    connection, may never come), within the drain timeout."""
    deadline = time.monotonic() + run.plan.drain_timeout
    progress, moved = (-1, -1), time.monotonic()
    while (now := time.monotonic()) < deadline and now - moved < _QUIET:
        stored = await asyncio.to_thread(_count, store, tag)
        if stored >= len(run.confirmed) == len(run.sent):
            return
        if (stored, len(run.confirmed)) != progress:
            progress, moved = (stored, len(run.confirmed)), now
        await asyncio.sleep(1)


def _stored(store: Store, tag: str) -> dict[str, float]:
    """Message id -> row time (epoch seconds) of this run's rows."""
    query = sa.select(_PROBES.c.msg_id, _PROBES.c.received_at).where(
        _PROBES.c.msg_id.startswith(f"{tag}-")
    )
    with store.engine.connect() as db:
        rows = db.execute(query).all()
    return {
        msg_id: (at if at.tzinfo else at.replace(tzinfo=timezone.utc)).timestamp()
        for msg_id, at in rows
    }


def _count(store: Store, tag: str) -> int:
    query = sa.select(sa.func.count()).where(_PROBES.c.msg_id.startswith(f"{tag}-"))
    with store.engine.connect() as db:
        return int(db.execute(query).scalar_one())


def _percentiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return (values[0], values[0]) if values else (float("nan"), float("nan"))
    cuts = statistics.quantiles(values, n=100)
    return cuts[49], cuts[98]


@contextlib.contextmanager
def _consumers(target: Target, store_url: str, logs: Path) -> Iterator[None]:
    procs = []
    for n, endpoint in enumerate(target.store_on):
        login = f"{endpoint.login}:{endpoint.passcode}@" if endpoint.login else ""
        args = [sys.executable, "-m", "msgbus", "consume", "--name", f"bench-store-{n}"]
        args += ["--broker", f"stomp://{login}{endpoint.host}:{endpoint.port}"]
        args += ["--destination", target.queue, "--store", store_url]
        log = (logs / f"consumer-{n}.log").open("w")
        procs.append((subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT), log))
    try:
        yield
    finally:
        for proc, _ in procs:
            proc.terminate()
        for proc, log in procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()


async def _sample_rss(pids: list[int], phases: list[Phase]) -> None:
    """Keep each phase's peak of the brokers' resident memory (VmHWM has one peak only)."""
    while True:
        now = time.time()
        current = [p for p in phases if p.began and (not p.ended or now <= p.ended)]
        if current:
            mib = sum(_status_kib(pid) for pid in pids) / 1024
            for phase in current:
                phase.peak_rss_mib = max(phase.peak_rss_mib or 0.0, mib)
        await asyncio.sleep(_RSS_EVERY)


async def _single(plan: SitesPlan, endpoint: Endpoint) -> tuple[Measurement | None, str]:
    """The persistent rate of one connection (``msgbus bench broker``'s workload)."""
    if not plan.single:
        return None, "not measured (--single 0)"
    try:
        found = await asyncio.to_thread(
            measure, endpoint, count=plan.single, size=plan.size, persistent=True
        )
    except MsgbusError as exc:
        return None, f"not measured: {exc}"
    return found, ""


async def _await_consumers(run: _Run, store: Store, tag: str) -> None:
    """A virtual topic keeps a message only for the consumer queues that exist when it
    arrives: a result sent before the store's consumers subscribed is confirmed, then
    dropped, and would count as lost. So before anything is timed, a result sent through
    each broker the sites use must reach the store (one a second until one does)."""
    warm = _Run(run.plan, run.target)  # its receipts stay out of the run's counts
    body, headers = probe_body(run.plan.size)
    for i, endpoint in enumerate(dict.fromkeys(run.target.sites_on)):
        site = _Site(warm, f"{tag}w{i}", endpoint)
        await _open(site)
        deadline = time.monotonic() + _QUIET
        try:
            while not await asyncio.to_thread(_count, store, site.name):
                if time.monotonic() > deadline:
                    raise TimeoutException(
                        f"no result sent through {endpoint.name} reached the store within "
                        f"{_QUIET:.0f} s; see the consumers' logs"
                    )
                site.publish(run.target.topic, body, headers)
                await asyncio.sleep(1)
        finally:
            site.close()


async def _measure(run: _Run, store: Store, tag: str) -> SitesReport:
    plan, target = run.plan, run.target
    pids = target.pids
    single, single_note = await _single(plan, target.sites_on[0])
    await _await_consumers(run, store, tag)
    rss_before = sum(_status_kib(p) for p in pids) if pids else None
    started = time.monotonic()
    sites, errors = await _connect_all(run, tag)
    connect_seconds = time.monotonic() - started
    await asyncio.sleep(2)  # let the brokers settle what the connects allocated
    rss_after = sum(_status_kib(p) for p in pids) if pids else None
    per_conn = None
    if rss_before is not None and rss_after is not None and sites:
        per_conn = (rss_after - rss_before) / len(sites)
    beats = asyncio.create_task(_beat(sites, plan.heartbeat_ms / 1000))
    body, headers = probe_body(plan.size)
    phases = [Phase("steady", plan.rate, plan.steady)]
    if plan.burst > 0:  # --burst 0: the steady phase alone
        phases.append(Phase("burst", plan.rate * plan.burst_factor, plan.burst))
    sampler = asyncio.create_task(_sample_rss(pids, phases))
    for phase in phases:
        cpu_before = _total([cpu_seconds(p) for p in pids])
        phase.began = time.time()
        await _offer(run, sites, phase, body, headers)
        phase.ended = time.time()
        cpu_after = _total([cpu_seconds(p) for p in pids])
        if cpu_before is not None and cpu_after is not None:
            phase.cpu = (cpu_after - cpu_before) / phase.seconds
    sampler.cancel()
    await _drain(run, store, tag)
    rows = await asyncio.to_thread(_stored, store, tag)
    beats.cancel()
    for site in sites:
        site.close()
    end = phases[-1].ended
    for phase in phases:
        phase.accepted = sum(1 for at in run.confirmed.values() if phase.during(at))
        sent = [(m, at) for m, at in run.sent.items() if phase.during(at)]
        phase.latency = _percentiles([rows[m] - at for m, at in sent if m in rows])
        phase.confirm = _percentiles(
            [run.confirmed[m] - at for m, at in sent if m in run.confirmed]
        )
    stored_by_end = sum(1 for at in rows.values() if at <= end)
    confirmed_by_end = sum(1 for at in run.confirmed.values() if at <= end)
    peak = sum(_status_kib(p, "VmHWM") for p in pids) / 1024 if pids else None
    return SitesReport(
        target=target.name,
        sites=plan.sites,
        connected=len(sites),
        connect_seconds=connect_seconds,
        connect_errors=errors,
        rss_kib_per_connection=per_conn,
        peak_rss_mib=peak,
        phases=phases,
        sent=len(run.sent),
        confirmed=len(run.confirmed),
        refused=run.refused,
        stored=len(rows),
        unconfirmed=len(run.sent) - len(run.confirmed),
        missing=len(run.confirmed.keys() - rows.keys()),
        backlog=max(0, confirmed_by_end - stored_by_end),
        drain_seconds=max(0.0, max(rows.values(), default=end) - end),
        single=single,
        single_note=single_note,
    )


def run(plan: SitesPlan, target: Target, store_url: str, logs: Path) -> SitesReport:
    """Measure ``plan`` on ``target``, stored at ``store_url`` (initialised here)."""
    store = Store(store_url)
    store.init()
    tag = f"b{uuid.uuid4().hex[:8]}"
    try:
        with _consumers(target, store_url, logs):
            return asyncio.run(_measure(_Run(plan, target), store, tag))
    finally:
        store.close()


@contextlib.contextmanager
def embedded_target(base: Path, plan: SitesPlan) -> Iterator[Target]:
    """``msgbus broker serve`` (persistent store) with room for the plan's connections
    and for everything it sends waiting in one queue, as an operator would size it."""
    depth = max(100_000, int(plan.rate * (plan.steady + plan.burst_factor * plan.burst)) + 10_000)
    limits = f"{{max_connections: {plan.sites + 100}, max_queue_depth: {depth}}}"
    config = base / "broker.yaml"
    config.write_text(f"limits: {limits}\n", encoding="utf-8")
    with embedded_broker(base / "broker-data", config) as endpoint:
        yield Target(
            f"embedded broker (limits: {limits})",
            [endpoint],
            [endpoint],
            "/topic/VirtualTopic.grid.metrics",
            "/queue/Consumer.store.VirtualTopic.grid.metrics",
        )


@contextlib.contextmanager
def network_target(
    topology_file: Path, base: Path, *, site_user: str | None, store_user: str | None
) -> Iterator[Target]:
    """The ActiveMQ network of ``topology_file``, started here: sites on every broker,
    the store on the brokers of its first consumer group, on its first virtual topic."""
    topology = load_topology(topology_file)
    if not topology.virtual_topics or not topology.consumer_groups:
        raise ConfigError(
            f"{topology_file} names no virtual topic or consumer group; add "
            "virtual_topics and consumer_groups (see brokers/core3.yaml)"
        )
    passwords = {u.name: u.password for u in topology.users}

    def endpoint(name: str, user: str | None) -> Endpoint:
        broker = topology.broker(name)
        if topology.security.authentication and user not in passwords:
            raise ConfigError(
                f"{topology_file} requires logins: pass --site-user and --store-user "
                f"naming users of its users section ({', '.join(passwords) or 'none'})"
            )
        password = passwords.get(user or "")
        login = user if topology.security.authentication else None
        return Endpoint(name, broker.host, broker.ports.stomp, login, password, pid=None)

    network = LocalNetwork(topology, base / "network")
    network.up(timeout=180)
    try:
        pids = {b.name: network.process(b.name).pid() for b in topology.brokers}

        def located(e: Endpoint) -> Endpoint:
            return Endpoint(e.name, e.host, e.port, e.login, e.passcode, pid=pids[e.name])

        group, topic = topology.consumer_groups[0], topology.virtual_topics[0]
        yield Target(
            f"ActiveMQ network {topology.name} ({len(topology.brokers)} brokers)",
            [located(endpoint(b.name, site_user)) for b in topology.brokers],
            [located(endpoint(name, store_user)) for name in group.brokers],
            f"/topic/VirtualTopic.{topic}",
            f"/queue/Consumer.{group.name}.VirtualTopic.{topic}",
        )
    finally:
        network.down()
