"""The embedded broker's disk fills up and is freed (issue 24 item 4): ``msgbus broker
serve --data`` on a small tmpfs (the tests run as root), ``msgbus publish`` with its
spool elsewhere. On main the clients read "cannot rollback - no transaction is active",
the messages were reported rejected, and the broker stayed broken until a restart."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos.harness import probe_text
from tests.fixtures.pipeline import EmbeddedBroker, run_msgbus, wait_until
from tests.integration.broker.test_flow_control import Consumer, _counts

MESSAGES = 200


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs, unmounted after the test."""
    mount = tmp_path / "broker" / "data"
    mount.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(directory: Path) -> Path:
    """Take every free byte of the filesystem of ``directory``."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return filler


def test_a_full_disk_holds_messages_back_and_the_broker_recovers_by_itself(
    small_disk: Path, tmp_path: Path
) -> None:
    broker = EmbeddedBroker(small_disk.parent)
    broker.start()
    try:
        assert broker.process is not None
        queue = f"/queue/disk.{os.getpid()}"
        names = [f"disk #{i}" for i in range(MESSAGES)]
        source = tmp_path / "results.txt"
        source.write_text("".join(probe_text(n, 200) for n in names))
        spool = tmp_path / "spool"
        filler = _fill(small_disk)
        env = {"MSGBUS_PUBLISHER__RETRY_FOR": "2"}
        done = run_msgbus(
            ["publish", "--broker", broker.stomp_url, "--spool", str(spool)]
            + ["--destination", queue, str(source)],
            env=env,
        )
        # Held back, not rejected: spooled, with the cause named.
        assert _counts(done.stdout) == (0, MESSAGES, 0, 0), done.stdout
        assert done.returncode == 0, done.stdout
        assert "disk full: writing the broker store" in done.stdout, done.stdout
        assert "rollback" not in done.stdout

        filler.unlink()  # space returns; the broker is not restarted
        drained = run_msgbus(
            ["spool", "drain", "--broker", broker.stomp_url, "--spool", str(spool)],
            env={"MSGBUS_PUBLISHER__RETRY_FOR": "20"},
        )
        assert drained.returncode == 0, drained.stdout
        assert broker.process.running()
        consumer = Consumer(broker.stomp_url, queue)
        try:
            wait_until(lambda: len(consumer.seen) == MESSAGES, 60, "every message")
        finally:
            consumer.close()
        assert set(consumer.seen) == {n.encode() for n in names}
        assert all(count == 1 for count in consumer.seen.values())
        log = broker.process.output()
        assert "disk full:" in log and "is written again" in log, log
    finally:
        broker.kill()
