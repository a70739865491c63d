"""``msgbus bench consume``: msgbus.Consumer against the broker's raw drain rate and a naive peer.

N persistent 1 KB probe results are published to a durable subscription, then drained
in the same run, once for each of:

* a raw-socket subscriber with ack:auto that only counts frames (the broker's limit);
* a raw-socket subscriber that ACKs each message (client-individual, the Consumer's
  prefetch) as it arrives: the protocol work the Consumer must do, without decoding
  or storing anything;
* a raw-socket subscriber that sends one cumulative ACK (ack:client) per ``batch``
  messages, the protocol work of the Consumer's default;
* msgbus.Consumer (batched transactions, individual acks after commit), and again
  with one cumulative ACK per batch (``consumer.ack: client``, the default);
* ``msgbus consume --drain`` as users run it, a whole process with default settings,
  timed from its start to its last row (``received_at``);
* a naive stomp.py peer: per message decode, one INSERT, COMMIT, ACK.

The naive peer writes to a scratch table of its own; msgbus.Consumer's rows carry
``msgbus-id`` values unique to the run and are deleted afterwards, as are the durable
subscriptions, so the bench can run against a live store.
"""

from __future__ import annotations

import dataclasses
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from msgbus.bench import stomp_py
from msgbus.bench.raw import RawClient, raw_drain
from msgbus.config import MsgbusConfig
from msgbus.consume.consumer import Consumer, prefetch_for
from msgbus.consume.subscription import Subscription
from msgbus.errors import TimeoutException
from msgbus.schema.body import decode_body, encode_body
from msgbus.schema.models import ProbeResult
from msgbus.stomp import encode_acks, serialize
from msgbus.stomp.frames import SubscribeFrame
from msgbus.stomp.headers import ID_HEADER, SEQ_HEADER, compact_number
from msgbus.store.database import Store, StoredMessage, message_row
from msgbus.store.tables import ledger_gaps, ledger_producers, table_for
from msgbus.transport.connection import Connection
from msgbus.transport.failover import connect_first
from msgbus.transport.url import BrokerURL

__all__ = [
    "CLI",
    "NAIVE",
    "RAW_ACKS",
    "RAW_CUMULATIVE",
    "RAW_DRAIN",
    "STEADY",
    "ours_name",
    "probe_body",
    "round_ratios",
    "run_consume_bench",
]

_PROBES = table_for(ProbeResult.message_class)

RAW_DRAIN = "raw socket, ack:auto, counting only"
RAW_ACKS = "raw socket, client-individual ACK each"
RAW_CUMULATIVE = "raw socket, ack:client, one ACK per batch"
CLI = "msgbus consume (whole process)"
STEADY = ", first to last"
"""Suffix of a row's steady-state rate (first message or row to the last)."""
NAIVE = "naive stomp.py: INSERT+COMMIT+ACK each"


@dataclass(frozen=True, slots=True)
class Result:
    consumer: str
    count: int
    seconds: float
    cpu_seconds: float = 0.0
    """CPU time of this process (all threads) during the run: steadier than msgs/s when
    other work shares the machine."""
    steady_rate: float | None = None
    """Messages per second from the first message (row) to the last, where measured."""

    @property
    def cpu_us_per_message(self) -> float:
        return self.cpu_seconds / max(self.count, 1) * 1e6

    @property
    def rate(self) -> float:
        return self.count / max(self.seconds, 1e-9)


def probe_body(size: int = 1024, number: int = 0) -> tuple[bytes, dict[str, str]]:
    """A WLCG ProbeResult body of about ``size`` bytes (detailsData pads it); ``number``
    varies the site (5 of them), host (7) and summary."""
    fields: dict[str, Any] = {
        "serviceURI": f"https://ce{number % 7}.example.org:8443/cream",
        "hostName": f"ce{number % 7}.example.org",
        "serviceFlavour": "CREAM-CE",
        "siteName": f"SITE-{number % 5}",
        "metricStatus": "OK",
        "metricName": "org.sam.CE-JobSubmit",
        "summaryData": f"OK: job {number} submitted",
        "timestamp": "2026-01-01T00:00:00Z",
        "detailsData": "x",
    }
    body, _ = encode_body(ProbeResult.model_validate(fields), "wlcg")
    fields["detailsData"] = "x" * max(1, size - len(body) + 1)
    return encode_body(ProbeResult.model_validate(fields), "wlcg")


def _publish(conn: Connection, topic: str, tag: str, count: int, size: int) -> None:
    body, headers = probe_body(size)
    # Numbered as msgbus publishers number them, so the Consumer's ledger does its work.
    headers = {**headers, "persistent": "true"}
    for start in range(0, count, 500):
        frames = [
            conn.send_frame(
                topic,
                body,
                {**headers, ID_HEADER: f"{tag}-{i}", SEQ_HEADER: compact_number(tag, 1, i + 1)},
            )
            for i in range(start, min(count, start + 500))
        ]
        frames[-1].headers["receipt"] = receipt = f"pub-{start}"
        conn.write_frames(frames)
        conn.wait_for_receipt(receipt, 60)


def _raw_drain(
    url: BrokerURL,
    topic: str,
    sub: Subscription,
    count: int,
    *,
    ack_prefetch: int | None = None,
    ack_every: int | None = None,
) -> Result:
    """ack:auto and only counting frames (the broker's limit); with ``ack_prefetch``, the
    protocol work the Consumer cannot skip: client-individual ACKs of every message as
    soon as it arrives, with the Consumer's prefetch; with ``ack_every`` too, one
    cumulative ACK (ack:client) of every ``ack_every``-th message instead."""
    client_id = sub.client_id(None)
    assert client_id is not None and sub.name is not None
    password = url.password.get_secret_value() if url.password else None
    headers = {
        "destination": topic,
        "id": sub.id,
        "ack": "auto" if ack_prefetch is None else "client" if ack_every else "client-individual",
        # A prefetch of 1000 is what ActiveMQ 5.17 takes as "unset" on a durable
        # subscription: its default applies, the broker's fastest for ack:auto.
        **sub.headers("activemq", ack_prefetch or 1000),
    }
    with RawClient(
        url.host, url.port, login=url.user, passcode=password, headers={"client-id": client_id}
    ) as client:
        started = time.monotonic()
        client.send_bytes(serialize(SubscribeFrame(headers)))
        if ack_prefetch is None:
            finished = raw_drain(client, count).finished
            name = RAW_DRAIN
        elif ack_every is not None:
            seen, first = 0, 0.0
            while seen < count:
                for frame in client.read():
                    if frame.command == "MESSAGE":
                        seen += 1
                        if seen == 1:
                            first = time.monotonic()
                        if seen % ack_every == 0 or seen == count:
                            client.send_bytes(encode_acks([frame.headers["ack"]]))
            finished = time.monotonic()
            steady = (count - 1) / max(finished - first, 1e-9)
            return Result(RAW_CUMULATIVE, count, finished - started, steady_rate=steady)
        else:
            seen = 0
            while seen < count:
                ids = [f.headers["ack"] for f in client.read() if f.command == "MESSAGE"]
                client.send_bytes(encode_acks(ids))
                seen += len(ids)
            finished = time.monotonic()
            name = RAW_ACKS
    return Result(name, count, finished - started)


def _ours(
    config: MsgbusConfig, sub: Subscription, count: int, ack: str, *, ledger: bool = True
) -> Result:
    update = {
        "destination": sub.destination,
        "subscription": sub.name,
        "ack": ack,
        "ledger": ledger,
    }
    cfg = config.model_copy(update={"consumer": config.consumer.model_copy(update=update)})
    consumer = Consumer(cfg)
    started = time.time()
    consumer.drain()
    consumer.run()
    stats = consumer.stats()
    if stats["stored"] != count or stats["last_commit"] is None:
        raise TimeoutException(f"msgbus.Consumer stored {stats['stored']} of {count} messages")
    finished = datetime.fromisoformat(stats["last_commit"]).timestamp()
    return Result(ours_name(cfg.consumer.batch, ack, ledger), count, finished - started)


def _cli(config: MsgbusConfig, store: Store, sub: Subscription, count: int) -> Result:
    """``msgbus consume --drain`` with default settings, from its start to its last row;
    CPU is the child's (user + system)."""
    url = config.connection.brokers[0]
    login = f"{url.user}:{url.password.get_secret_value()}@" if url.user and url.password else ""
    args = [sys.executable, "-m", "msgbus", "consume", "--drain"]
    args += ["--broker", f"stomp://{login}{url.host}:{url.port}", "--store", config.store_url]
    args += ["--destination", sub.destination, "--subscription", str(sub.name)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise TimeoutException(f"msgbus consume failed: {done.stdout}{done.stderr}")
    mine = _PROBES.c.msg_id.startswith(f"{sub.name}-")
    received = _PROBES.c.received_at
    with store.engine.connect() as db:
        stored, first, last = db.execute(
            sa.select(sa.func.count(), sa.func.min(received), sa.func.max(received)).where(mine)
        ).one()
        # The rows after the first batch's, over the time from its row to the last row.
        later = db.execute(sa.select(sa.func.count()).where(mine, received > first)).scalar_one()
    if stored != count or last is None:
        raise TimeoutException(f"msgbus consume stored {stored} of {count} messages")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    steady = later / max((last - first).total_seconds(), 1e-9)
    return Result(CLI, count, last.timestamp() - started, cpu_seconds=cpu, steady_rate=steady)


def ours_name(batch: int, ack: str, ledger: bool = True) -> str:
    """The result row of msgbus.Consumer with ``batch``, ``ack`` and the ledger on or off."""
    name = f"msgbus.Consumer, batch {batch}" + (", ack:client" if ack == "client" else "")
    return name + ("" if ledger else ", no ledger")


class _NaivePeer:
    """Per message: decode, INSERT, COMMIT, ACK (what a first consumer usually does);
    a stomp.py listener (stomp.py calls the ``on_<frame>`` methods a listener has)."""

    def __init__(self, conn: Any, engine: sa.Engine, table: sa.Table, count: int) -> None:
        self.conn, self.engine, self.table, self.count = conn, engine, table, count
        self.seen = 0
        self.done = threading.Event()

    def on_message(self, frame: Any) -> None:
        if self.done.is_set():
            return  # measured enough; the rest goes with the subscription
        headers = frame.headers
        received = datetime.now(timezone.utc)
        for result in decode_body(frame.body, headers):
            if result.message is not None:
                item = StoredMessage(headers["msgbus-id"], result.message_no or 0, result.message)
                with self.engine.begin() as db:
                    db.execute(sa.insert(self.table), message_row(item, received))
        self.conn.ack(headers["ack"])
        self.seen += 1
        if self.seen >= self.count:
            self.done.set()


def _naive(url: BrokerURL, store: Store, sub: Subscription, count: int) -> Result:
    scratch = sa.MetaData()
    # The same columns without probe_results' named constraints and indexes.
    table = sa.Table(
        f"msgbus_bench_naive_{int(time.time())}",
        scratch,
        *(
            sa.Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
            for c in _PROBES.columns
        ),
    )
    with store.errors("creating the naive peer's scratch table"):
        scratch.create_all(store.engine)
    conn = stomp_py().Connection12([(url.host, url.port)], heartbeats=(0, 0))
    peer = _NaivePeer(conn, store.engine, table, count)
    conn.set_listener("naive", peer)
    try:
        password = url.password.get_secret_value() if url.password else None
        conn.connect(url.user, password, wait=True, headers={"client-id": sub.client_id(None)})
        started = time.monotonic()
        conn.subscribe(
            sub.destination,
            sub.id,
            ack="client-individual",
            headers={
                "activemq.subscriptionName": sub.name,
                "activemq.prefetchSize": "1000",
            },
        )
        if not peer.done.wait(max(120.0, count / 100)):
            raise TimeoutException(f"the naive peer handled {peer.seen} of {count} messages")
        elapsed = time.monotonic() - started
        conn.disconnect()
        # stomp.py's disconnect does not wait for the broker's receipt; until it comes the
        # broker still holds the client-id and the clean-up connection would be refused.
        deadline = time.monotonic() + 10
        while conn.is_connected() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        with store.errors("dropping the naive peer's scratch table"):
            scratch.drop_all(store.engine)
    return Result(NAIVE, count, elapsed)


def _timed(run: Callable[[], Result]) -> Result:
    started = time.process_time()
    result = run()
    return dataclasses.replace(result, cpu_seconds=time.process_time() - started)


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_consume_bench(
    config: MsgbusConfig, count: int, naive_count: int, size: int = 1024
) -> Iterator[Result | str]:
    """Yield each result as it completes, then a line on memory."""
    url = config.connection.brokers[0]
    tag = f"bench-{time.time_ns()}"
    counts = {
        "raw": count,
        "raw-ack": count,
        "raw-cumulative": count,
        "ours": count,
        "ours-cumulative": count,
        "ours-no-ledger": count,
        "naive": naive_count,
        "cli": count,
    }
    # A topic of its own per consumer, published just before it drains: on a shared
    # topic the first subscription drained pays for paging the messages in from the
    # journal and the later ones find them cached (measured: the second was faster).
    subs = {
        who: Subscription(f"/topic/msgbus.bench.consume.{tag}.{who}", f"{tag}-{who}")
        for who in counts
    }
    store = Store(config.store_url)
    store.init()

    def published(who: str) -> Subscription:
        sub = subs[who]
        conn = connect_first(config.connection, client_id=sub.client_id(None))
        sub.subscribe(conn, 1)  # the durable subscription must exist before the messages
        conn.disconnect()
        conn = connect_first(config.connection)
        _publish(conn, sub.destination, f"{tag}-{who}", counts[who], size)
        conn.disconnect()
        return sub

    batch = config.consumer.batch
    prefetch = prefetch_for(batch)
    try:
        sub = published("raw")
        yield _timed(lambda: _raw_drain(url, sub.destination, sub, count))
        sub = published("raw-ack")
        yield _timed(lambda: _raw_drain(url, sub.destination, sub, count, ack_prefetch=prefetch))
        sub = published("ours")
        yield _timed(lambda: _ours(config, sub, count, "client-individual"))
        yield f"peak resident memory after msgbus.Consumer: {_peak_rss_mb():.0f} MB"
        sub = published("ours-cumulative")
        yield _timed(lambda: _ours(config, sub, count, "client"))
        sub = published("ours-no-ledger")
        yield _timed(lambda: _ours(config, sub, count, "client-individual", ledger=False))
        sub = published("naive")
        yield _timed(lambda: _naive(url, store, sub, naive_count))
        sub = published("raw-cumulative")
        yield _timed(
            lambda: _raw_drain(
                url, sub.destination, sub, count, ack_prefetch=prefetch, ack_every=batch
            )
        )
        sub = published("cli")
        yield _cli(config, store, sub, count)
    finally:
        for sub in subs.values():
            conn = connect_first(config.connection, client_id=sub.client_id(None))
            sub.remove(conn)
            conn.disconnect()
        with store.errors("deleting the bench's rows"), store.engine.begin() as db:
            db.execute(sa.delete(_PROBES).where(_PROBES.c.msg_id.startswith(f"{tag}-")))
            for table in (ledger_gaps, ledger_producers):
                db.execute(sa.delete(table).where(table.c.producer.startswith(f"{tag}-")))
        store.close()


def round_ratios(
    rates: dict[str, float], ours: str, cumulative: str, no_ledger: str
) -> dict[str, float]:
    """The ratios of one round, from its msgs/s by row name."""
    return {
        "drain": rates[ours] / rates[RAW_DRAIN],
        "acks": rates[ours] / rates[RAW_ACKS],
        "naive": rates[ours] / rates[NAIVE],
        "cumulative": rates[cumulative] / rates[ours],
        "ack_cost": rates[RAW_ACKS] / rates[RAW_DRAIN],
        "ledger": rates[ours] / rates[no_ledger],
        "cli": rates[CLI] / rates[RAW_CUMULATIVE],
        "cli_drain": rates[CLI] / rates[RAW_DRAIN],
        "cli_steady": rates[CLI + STEADY] / rates[RAW_CUMULATIVE + STEADY],
    }
