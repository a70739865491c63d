"""`msgbus broker serve` as a process: kill -9 persistence, presence for `msgbus status`."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from msgbus.bench.raw import RawClient, raw_send
from msgbus.errors import TimeoutException
from msgbus.network.activemq import free_port
from msgbus.stomp import serialize
from msgbus.stomp.frames import Frame, SendFrame, SubscribeFrame, UnsubscribeFrame

_LISTENING = re.compile(r"listening on stomp://[^:]+:(\d+)")


class BrokerProcess:
    """`msgbus broker serve --port 0 --data DIR` as a child process."""

    def __init__(self, data: Path) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from msgbus.cli.main import main; main()",
                "broker",
                "serve",
                "--port",
                "0",
                "--data",
                str(data),
                "--no-presence",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        found = _LISTENING.search(line)
        assert found, f"broker did not start: {line}"
        self.port = int(found.group(1))

    def client(self, **headers: str) -> RawClient:
        return RawClient("127.0.0.1", self.port, timeout=20, headers=headers)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.close()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)
        self.close()

    def close(self) -> None:
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def brokers(data_dir: Path) -> Iterator[list[BrokerProcess]]:
    started: list[BrokerProcess] = []
    yield started
    for broker in started:
        if broker.proc.poll() is None:
            broker.kill()


def drain(client: RawClient, destination: str, expected: int, **extra: str) -> list[Frame]:
    client.send_bytes(
        serialize(
            SubscribeFrame(
                {"destination": destination, "id": "1", "ack": "auto", "receipt": "sub", **extra}
            )
        )
    )
    messages: list[Frame] = []
    while len(messages) < expected:
        messages += [f for f in client.read() if f.command == "MESSAGE"]
    return messages


def test_receipted_persistent_messages_survive_kill_9(
    data_dir: Path, brokers: list[BrokerProcess]
) -> None:
    first = BrokerProcess(data_dir)
    brokers.append(first)
    with first.client(**{"client-id": "probe"}) as durable:
        drain(durable, "/topic/grid", 0, **{"activemq.subscriptionName": "keep"})
    with first.client() as producer:
        # Every receipt came back, so every message is on disk before the kill.
        raw_send(producer, "/queue/keep", 500, b"q" * 1024, persistent=True, receipts="each")
        raw_send(producer, "/topic/grid", 50, b"t", persistent=True, receipts="each")
        raw_send(producer, "/queue/keep", 5, b"lost", persistent=False, receipts="last")
    first.kill()

    second = BrokerProcess(data_dir)
    brokers.append(second)
    with second.client() as consumer:
        got = drain(consumer, "/queue/keep", 500)
        assert [f.body for f in got] == [b"q" * 1024] * 500
        # Non-persistent messages live in memory only: none came back.
        consumer.sock.settimeout(0.5)  # type: ignore[union-attr]
        with pytest.raises(TimeoutException):
            consumer.read()
    with second.client(**{"client-id": "probe"}) as again:
        durable_messages = drain(again, "/topic/grid", 50, **{"activemq.subscriptionName": "keep"})
    assert len(durable_messages) == 50
    second.stop()


def test_persistent_sends_are_group_committed(data_dir: Path) -> None:
    from msgbus.broker import BrokerConfig, BrokerThread

    with BrokerThread(BrokerConfig(port=0, data_dir=data_dir)) as thread:
        with RawClient("127.0.0.1", thread.port) as producer:
            raw_send(
                producer,
                "/queue/batch",
                2000,
                b"x" * 1024,
                persistent=True,
                receipts="each",
                window=500,
            )
        commits = thread.broker.store.commits
    # One fsync per loop iteration's worth of SENDs, not one per message.
    assert 0 < commits < 2000 / 4, commits


@pytest.mark.parametrize("name", ["status-b1", None])
def test_broker_serve_shows_up_in_msgbus_status(tmp_path: Path, name: str | None) -> None:
    port = free_port()
    (tmp_path / "msgbus.yaml").write_text(
        f"connection: {{brokers: ['stomp://127.0.0.1:{port}']}}\n"
        "control: {presence_interval: 1.0}\n"
    )
    cli = [sys.executable, "-c", "from msgbus.cli.main import main; main()"]
    broker = subprocess.Popen(
        [*cli, "broker", "serve", "--port", str(port), *(["--name", name] if name else [])],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert broker.stdout is not None and "listening" in broker.stdout.readline()
        status = subprocess.run(
            [
                *cli,
                "status",
                "--json",
                "--no-broker-stats",
                "--listen",
                "3",
                "--state-file",
                str(tmp_path / "state.json"),
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        components = {c["name"]: c for c in json.loads(status.stdout)["components"]}
        # Without --name: kind@host:pid, like every other component.
        expected = name or f"broker@{socket.gethostname()}:{broker.pid}"
        assert components[expected]["kind"] == "broker"
        assert components[expected]["state"] == "running"
    finally:
        broker.terminate()
        broker.wait(20)
        assert broker.stdout is not None
        broker.stdout.close()


def test_a_durable_subscription_keeps_its_selector_across_a_restart(
    data_dir: Path, brokers: list[BrokerProcess]
) -> None:
    durable = {"activemq.subscriptionName": "crit", "selector": "metricStatus = 'CRITICAL'"}
    first = BrokerProcess(data_dir)
    brokers.append(first)
    with first.client(**{"client-id": "nagios"}) as subscriber:
        drain(subscriber, "/topic/results", 0, **durable)
        while not any(f.command == "RECEIPT" for f in subscriber.read()):
            pass  # confirmed: the subscription is on disk, kill -9 or not
    first.kill()

    second = BrokerProcess(data_dir)
    brokers.append(second)
    with second.client() as producer:  # sent while the subscriber is away
        for n, status in enumerate(["OK", "CRITICAL", "WARNING"]):
            headers = {"destination": "/topic/results", "persistent": "true"}
            headers |= {"metricStatus": status, "receipt": str(n)}
            producer.send_bytes(serialize(SendFrame(headers, status.encode())))
            while not any(f.command == "RECEIPT" for f in producer.read()):
                pass
    with second.client(**{"client-id": "nagios"}) as subscriber:
        [only] = drain(subscriber, "/topic/results", 1, **durable)
        assert only.body == b"CRITICAL"
        subscriber.sock.settimeout(0.5)  # type: ignore[union-attr]
        later: list[Frame] = []
        with pytest.raises(TimeoutException):  # nothing the selector does not select
            while True:
                later += subscriber.read()
        assert [f.command for f in later] in ([], ["RECEIPT"])
    second.stop()


def test_a_confirmed_durable_subscription_survives_kill_9(
    data_dir: Path, brokers: list[BrokerProcess]
) -> None:
    # Its RECEIPT told the consumer it exists: what is published after a crash is kept.
    first = BrokerProcess(data_dir)
    brokers.append(first)
    names = [f"sub{n}" for n in range(20)]
    with first.client(**{"client-id": "store"}) as subscriber:
        for n, name in enumerate(names):
            headers = {"destination": "/topic/kept", "id": str(n), "ack": "auto"}
            headers |= {"receipt": name, "activemq.subscriptionName": name}
            subscriber.send_bytes(serialize(SubscribeFrame(headers)))
        receipts: set[str] = set()
        while len(receipts) < len(names):
            receipts |= {f.headers["receipt-id"] for f in subscriber.read()}
        first.kill()

    second = BrokerProcess(data_dir)
    brokers.append(second)
    with second.client() as producer:
        headers = {"destination": "/topic/kept", "persistent": "true", "receipt": "r"}
        producer.send_bytes(serialize(SendFrame(headers, b"after the crash")))
        while not any(f.command == "RECEIPT" for f in producer.read()):
            pass
    with second.client(**{"client-id": "store"}) as subscriber:
        for name in names:
            [got] = drain(subscriber, "/topic/kept", 1, **{"activemq.subscriptionName": name})
            assert got.body == b"after the crash", name
            subscriber.send_bytes(serialize(UnsubscribeFrame({"id": "1"})))
    second.stop()
