"""``msgbus bench broker``: the embedded broker against a local ActiveMQ, same workload.

Workload: 1 KB messages on a fresh queue, one raw-socket producer (this process) and
one raw-socket consumer (a separate process, so the two do not share a GIL); the
embedded broker runs in a subprocess of its own. Non-persistent messages are sent
without receipts; persistent ones each ask for a receipt, pipelined within a window,
so a broker that batches its disk syncs can show it. A rate is messages divided by
the time from the first SEND to the last MESSAGE received.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from msgbus.bench.raw import RawClient, RunResult, raw_drain, raw_send, subscribe
from msgbus.errors import ConnectError, MsgbusError
from msgbus.network.activemq import free_port
from msgbus.network.local import LocalNetwork
from msgbus.network.topology import parse_topology
from msgbus.transport.url import BrokerURL

__all__ = [
    "Endpoint",
    "Measurement",
    "cpu_seconds",
    "embedded_broker",
    "local_activemq",
    "measure",
]

_LISTENING = re.compile(r"listening on stomp://([^:\s]+):(\d+)")


@dataclass(frozen=True)
class Endpoint:
    """Where a broker under test answers STOMP."""

    name: str
    host: str
    port: int
    login: str | None = None
    passcode: str | None = None
    pid: int | None = None  # of a local broker process, to read its CPU time

    def client(self) -> RawClient:
        return RawClient(self.host, self.port, login=self.login, passcode=self.passcode)

    @classmethod
    def from_url(cls, name: str, url: str) -> Endpoint:
        parsed = BrokerURL.model_validate(url)
        return cls(
            name,
            parsed.host,
            parsed.port,
            parsed.user,
            parsed.password.get_secret_value() if parsed.password else None,
        )


@dataclass(frozen=True)
class Measurement:
    broker: str
    workload: str
    count: int
    seconds: float
    cpu_seconds: float | None  # the broker's CPU time, None when its pid is unknown

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    @property
    def cpu_us_per_message(self) -> float | None:
        """Broker CPU per message: steadier than msgs/s on a busy machine."""
        return None if self.cpu_seconds is None else self.cpu_seconds / self.count * 1e6


def cpu_seconds(pid: int | None) -> float | None:
    """User plus system CPU time of a process and its threads (Linux /proc)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _drain_process(endpoint: Endpoint, destination: str, count: int, pipe: Connection) -> None:
    try:
        with endpoint.client() as client:
            seen = subscribe(client, destination)
            pipe.send("ready")
            pipe.send(raw_drain(client, count, seen=seen))
    except MsgbusError as exc:
        pipe.send(f"consumer failed: {exc}")


def measure(endpoint: Endpoint, *, count: int, size: int, persistent: bool) -> Measurement:
    """Run the workload once against ``endpoint``."""
    destination = f"/queue/msgbus.bench.{uuid.uuid4().hex[:12]}"
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    consumer = ctx.Process(
        target=_drain_process, args=(endpoint, destination, count, theirs), daemon=True
    )
    consumer.start()
    cpu_before = cpu_seconds(endpoint.pid)
    try:
        status = ours.recv() if ours.poll(60) else "no answer within 60s"
        if status != "ready":
            raise ConnectError(f"{endpoint.name}: the consumer did not subscribe ({status})")
        with endpoint.client() as producer:
            sent = raw_send(
                producer,
                destination,
                count,
                b"x" * size,
                persistent=persistent,
                receipts="each" if persistent else "none",
            )
            if not ours.poll(600):
                raise ConnectError(f"{endpoint.name}: the consumer got no messages in time")
            drained = ours.recv()
        if not isinstance(drained, RunResult):
            raise ConnectError(f"{endpoint.name}: {drained}")
    finally:
        consumer.join(10)
        if consumer.is_alive():
            consumer.kill()
    cpu_after = cpu_seconds(endpoint.pid)
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    workload = "persistent" if persistent else "non-persistent"
    return Measurement(endpoint.name, workload, count, drained.finished - sent.started, cpu)


@contextlib.contextmanager
def embedded_broker(data_dir: Path, config: Path | None = None) -> Iterator[Endpoint]:
    """``msgbus broker serve`` in a subprocess, with its store in ``data_dir`` and its
    settings (limits, users) from the YAML file ``config``."""
    cmd = [
        sys.executable,
        "-c",
        "from msgbus.cli.main import main; main()",
        "broker",
        "serve",
        "--port",
        "0",
        "--name",
        "bench",
        "--data",
        str(data_dir),
        "--no-presence",  # no traffic but the workload's
    ]
    if config is not None:
        cmd += ["--broker-config", str(config)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        found = _LISTENING.search(line)
        if found is None:
            raise ConnectError(f"the embedded broker did not start: {line.strip()}")
        yield Endpoint("embedded", found.group(1), int(found.group(2)), pid=proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


@contextlib.contextmanager
def local_activemq(base: Path) -> Iterator[Endpoint]:
    """A throw-away ActiveMQ from the local installation (KahaDB persistence on)."""
    port = free_port()
    topology = parse_topology(
        {
            "name": "bench",
            "security": {"authentication": False},
            "brokers": [
                {"name": "bench", "heap_mb": 512, "ports": {"stomp": port, "openwire": free_port()}}
            ],
        },
        source="benchmark ActiveMQ",
    )
    process = LocalNetwork(topology, base).render("bench")
    process.start(timeout=120)
    try:
        yield Endpoint("activemq", "127.0.0.1", port, pid=process.pid())
    finally:
        process.kill()


def _median(runs: list[Measurement]) -> Measurement:
    return sorted(runs, key=lambda m: m.rate)[len(runs) // 2]


def compare(
    *, activemq_url: str | None, count: int, size: int, warmup: int, repeat: int = 3
) -> list[tuple[Measurement, Measurement]]:
    """Both workloads on both brokers; (embedded, activemq) pairs of median runs.

    Rounds alternate between the brokers, so drift in the machine's load (or a JIT
    still compiling in the background) does not favour whichever ran first.
    """
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="msgbus-bench-")))
        ours = stack.enter_context(embedded_broker(tmp / "embedded"))
        if activemq_url:
            theirs = Endpoint.from_url("activemq", activemq_url)
        else:
            theirs = stack.enter_context(local_activemq(tmp / "activemq"))
        for endpoint in (ours, theirs):
            if warmup:  # JIT and page cache warm-up, not measured
                measure(endpoint, count=warmup, size=size, persistent=False)
                measure(endpoint, count=warmup, size=size, persistent=True)
        pairs = []
        for persistent in (False, True):
            runs: dict[str, list[Measurement]] = {"ours": [], "theirs": []}
            for _ in range(repeat):
                runs["ours"].append(measure(ours, count=count, size=size, persistent=persistent))
                runs["theirs"].append(
                    measure(theirs, count=count, size=size, persistent=persistent)
                )
            pairs.append((_median(runs["ours"]), _median(runs["theirs"])))
        return pairs
