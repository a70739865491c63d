"""Helpers for consumer tests: publishing probe results, running `msgbus consume` and
counting what the store holds (the fault proxy is tests.fixtures.proxy)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
import sqlalchemy as sa

from msgbus.bench.consume import probe_body
from msgbus.config import load_config
from msgbus.store.database import Store
from msgbus.store.tables import dead_letters, table_for
from msgbus.transport.connection import Connection

PROBES = table_for("ProbeResult")


def publish(
    url: str,
    destination: str,
    bodies: Sequence[tuple[bytes, dict[str, str]]],
    *,
    first_id: int = 0,
    chunk: int = 200,
    vhost: str | None = None,
) -> None:
    """Send persistent messages with msgbus-id ``m<n>``; returns once the broker has them all."""
    config = load_config(None, {"connection": {"brokers": [url], "vhost": vhost}})
    conn = Connection(config.connection.brokers[0], config.connection)
    conn.connect()
    try:
        for start in range(0, len(bodies), chunk):
            part = bodies[start : start + chunk]
            frames = [
                conn.send_frame(
                    destination,
                    body,
                    {**headers, "persistent": "true", "msgbus-id": f"m{first_id + start + k}"},
                )
                for k, (body, headers) in enumerate(part)
            ]
            frames[-1].headers["receipt"] = receipt = f"r{start}"
            conn.write_frames(frames)
            conn.wait_for_receipt(receipt, 30)
    finally:
        conn.disconnect()


def probes(n: int) -> list[tuple[bytes, dict[str, str]]]:
    """``n`` numbered ~1 KB ProbeResult bodies (sites SITE-0..SITE-4 in turn)."""
    return [probe_body(1024, i) for i in range(n)]


def count(store_url: str, table: sa.Table = PROBES) -> int:
    store = Store(store_url)
    try:
        with store.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
    finally:
        store.close()


def distinct_ids(store_url: str) -> int:
    store = Store(store_url)
    try:
        with store.engine.connect() as conn:
            query = sa.select(sa.func.count(sa.distinct(PROBES.c.msg_id)))
            return int(conn.execute(query).scalar_one())
    finally:
        store.close()


def init_store(store_url: str) -> None:
    store = Store(store_url)
    try:
        store.init()
    finally:
        store.close()


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


class ConsumeProcess:
    """`python -m msgbus consume ...` as a subprocess, its stderr kept in a file."""

    def __init__(self, log: Path, args: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.log = log
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        with log.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "msgbus", "consume", *args],
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=env,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30) -> int:
        return self.proc.wait(timeout)

    def stored(self) -> int:
        """From the summary line printed at a clean exit."""
        for line in self.output().splitlines():
            if line.startswith("received "):
                return int(line.split("stored ", 1)[1].split(",", 1)[0])
        raise AssertionError(f"no summary line in:\n{self.output()}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def consume_process(tmp_path: Path) -> Iterator[Callable[..., ConsumeProcess]]:
    started: list[ConsumeProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> ConsumeProcess:
        process = ConsumeProcess(tmp_path / f"consume-{len(started)}.log", args, env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


__all__ = [
    "PROBES",
    "ConsumeProcess",
    "count",
    "dead_letters",
    "distinct_ids",
    "init_store",
    "probe_body",
    "probes",
    "publish",
    "wait_until",
]
