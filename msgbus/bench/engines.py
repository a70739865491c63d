"""The price of replication, measured in one run: publish confirmed and consume into the
store on one RabbitMQ node, on the replicated RabbitMQ cluster, and on one ActiveMQ.

Each engine gets the same workload: ``count`` persistent probe results published by
msgbus's own publisher pipeline in its default confirm mode (a receipt per SEND on
RabbitMQ, where only that waits for the quorum queue; a transaction per batch of a
quarter of the window on ActiveMQ) with at most ``window`` unconfirmed (the
publisher's default window of 8192 would put a whole run in flight, and every latency
would be the run's), consumed by
``msgbus.Consumer`` into a store of its own. The rate runs from the first SEND to the
last row committed; the confirm latency is per message, from its SEND to the RECEIPT
that confirmed it (a COMMIT's for each message of its transaction).

RabbitMQ publishes to ``/topic/VirtualTopic.X`` and the group reads its quorum queue, as
brokers/rabbit3.yaml deploys them; the single node is a one-node cluster of the same
topology started by the same code (its quorum queue has one member), so the two differ
only in replication. ActiveMQ is a throw-away broker with KahaDB, fed through a queue.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from msgbus.bench.broker import local_activemq
from msgbus.bench.consume import probe_body
from msgbus.config import ConsumerConfig, MsgbusConfig, PublisherConfig
from msgbus.consume.consumer import Consumer
from msgbus.errors import BrokerError, NetworkError
from msgbus.network.activemq import free_port
from msgbus.network.rabbitmq import VHOST, group_queues
from msgbus.network.rabbitmq_local import RabbitCluster
from msgbus.publish.envelope import Envelope
from msgbus.publish.pipeline import Pipeline
from msgbus.store.database import Store
from msgbus.store.tables import table_for
from msgbus.transport.connection import Connection
from msgbus.transport.settings import ConnectionConfig
from msgbus.transport.url import BrokerURL

__all__ = [
    "Engine",
    "EngineRun",
    "activemq_engine",
    "cluster_engine",
    "compare_engines",
    "measure",
    "one_node",
]

_PROBES = table_for("ProbeResult")


@dataclass(frozen=True)
class Engine:
    name: str
    urls: list[BrokerURL]
    publish_to: str
    consume_from: str
    vhost: str | None = None


@dataclass(frozen=True)
class EngineRun:
    engine: str
    count: int
    seconds: float
    confirm_ms_p50: float
    confirm_ms_p99: float

    @property
    def rate(self) -> float:
        return self.count / max(self.seconds, 1e-9)


def cluster_engine(cluster: RabbitCluster, name: str) -> Engine:
    """The running cluster: clients list every node, as deployed clients do."""
    topo = cluster.topology
    if not topo.virtual_topics or not topo.consumer_groups:
        raise NetworkError(
            f"topology {topo.name} has no consumer group on a virtual topic to measure: add "
            "virtual_topics and consumer_groups"
        )
    queue, key = next(iter(group_queues(topo).items()))
    urls = [cluster.url(b.name) for b in topo.brokers]
    return Engine(name, urls, f"/topic/{key}", f"/amq/queue/{queue}", VHOST)


@contextlib.contextmanager
def one_node(cluster: RabbitCluster, base: Path) -> Iterator[Engine]:
    """A one-node cluster of the same topology (own name, ports and directory), started by
    the same code as the cluster, killed afterwards."""
    first = cluster.topology.brokers[0]
    ports = first.ports.model_copy(
        update={"stomp": free_port(), "amqp": free_port(), "dist": free_port()}
    )
    broker = first.model_copy(update={"name": "single", "ports": ports, "data_dir": None})
    groups = [
        g.model_copy(update={"brokers": ["single"]}) for g in cluster.topology.consumer_groups
    ]
    topo = cluster.topology.model_copy(
        update={
            "name": f"{cluster.topology.name}-single",
            "brokers": [broker],
            "consumer_groups": groups,
        }
    )
    single = RabbitCluster(topo, base / "rabbitmq-single")
    try:
        single.up()
        yield cluster_engine(single, "rabbitmq, 1 node")
    finally:
        single.process("single").kill()


@contextlib.contextmanager
def activemq_engine(base: Path) -> Iterator[Engine]:
    with local_activemq(base / "activemq") as endpoint:
        url = BrokerURL.model_validate({"host": endpoint.host, "port": endpoint.port})
        queue = f"/queue/msgbus.bench.engines.{uuid.uuid4().hex[:8]}"
        yield Engine("activemq, 1 broker", [url], queue, queue)


def compare_engines(
    cluster: RabbitCluster,
    base: Path,
    *,
    count: int,
    size: int,
    window: int,
    rounds: int,
    store_url: str | None = None,
) -> list[EngineRun]:
    """One RabbitMQ node, ``cluster`` and one ActiveMQ, each the median (by rate) of
    ``rounds`` runs taken in turn, so a load that comes and goes hits all three alike."""
    nodes = len(cluster.topology.brokers)
    with one_node(cluster, base) as single, activemq_engine(base) as activemq:
        engines = [single, cluster_engine(cluster, f"rabbitmq, {nodes}-node quorum"), activemq]
        for engine in engines:
            # A cold JVM or a new queue leader is not the engine's price.
            measure(engine, count=min(count, 500), size=size, window=window)
        measured = [
            [
                measure(e, count=count, size=size, window=window, store_url=store_url)
                for e in engines
            ]
            for _ in range(rounds)
        ]
    by_engine = zip(*measured, strict=True)
    return [sorted(runs, key=lambda r: r.rate)[rounds // 2] for runs in by_engine]


def measure(
    engine: Engine, *, count: int, size: int, window: int, store_url: str | None = None
) -> EngineRun:
    """Publish ``count`` messages confirmed, at most ``window`` unconfirmed, and consume
    them into the store."""
    tag = f"engines-{uuid.uuid4().hex[:10]}"
    with tempfile.TemporaryDirectory(prefix="msgbus-bench-") as tmp:
        url = store_url or f"sqlite:///{Path(tmp) / 'store.db'}"
        store = Store(url)
        store.init()
        try:
            return _measure(engine, store, url, tag, count=count, size=size, window=window)
        finally:
            store.close()


def _measure(
    engine: Engine, store: Store, store_url: str, tag: str, *, count: int, size: int, window: int
) -> EngineRun:
    connection = ConnectionConfig(brokers=engine.urls, vhost=engine.vhost)
    consumer = Consumer(
        MsgbusConfig(
            connection=connection,
            consumer=ConsumerConfig(destination=engine.consume_from),
            store_url=store_url,
        )
    )
    reader = threading.Thread(target=consumer.run, name="bench-consumer", daemon=True)
    reader.start()
    body, headers = probe_body(size)
    envelopes = (
        Envelope(engine.publish_to, body, headers, msgbus_id=f"{tag}-{i}") for i in range(count)
    )
    latencies: list[float] = []

    def confirmed(units: list[Envelope], latency: float) -> None:
        latencies.extend([latency] * len(units))

    def refused(envelope: Envelope, error: BrokerError) -> None:
        raise NetworkError(f"{engine.name} refused a benchmark message: {error}")

    defaults = PublisherConfig()
    conn = Connection(engine.urls[0], connection)
    started = time.monotonic()
    try:
        conn.connect()
        pipeline = Pipeline(
            conn,
            window=window,
            # Four confirmation units in the window: with one unit as large as the window,
            # ActiveMQ's units became stop-and-wait (995/s in a loaded run) while
            # RabbitMQ's per-SEND receipts kept the window full.
            batch=max(1, min(defaults.batch, window // 4)),
            confirm=defaults.confirm,
            receipt_timeout=120.0,
            persistent=True,
        )
        interrupted = pipeline.run(envelopes, confirmed, refused)
        if interrupted is not None:
            raise NetworkError(f"publishing to {engine.name} stopped: {interrupted.error}")
        _wait_stored(store, tag, count, engine.name, reader)
        seconds = time.monotonic() - started
    finally:
        conn.disconnect()
        consumer.stop()
        reader.join(30)
    latencies.sort()
    return EngineRun(
        engine.name,
        count,
        seconds,
        confirm_ms_p50=latencies[len(latencies) // 2] * 1000,
        confirm_ms_p99=latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000,
    )


def _wait_stored(
    store: Store, tag: str, count: int, engine: str, reader: threading.Thread, timeout: float = 300
) -> None:
    mine = sa.select(sa.func.count()).where(_PROBES.c.msg_id.startswith(f"{tag}-"))
    deadline = time.monotonic() + timeout
    while True:
        with store.engine.connect() as db:
            stored = int(db.execute(mine).scalar_one())
        if stored >= count:
            return
        if not reader.is_alive():
            raise NetworkError(f"{engine}: the consumer stopped after {stored} of {count} rows")
        if time.monotonic() > deadline:
            raise NetworkError(
                f"{engine}: {stored} of {count} messages stored after {timeout:g}s; see "
                "`msgbus network status`"
            )
        time.sleep(0.05)
