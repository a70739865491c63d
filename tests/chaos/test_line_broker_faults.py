"""ActiveMQ's line (brokers/line.yaml, a <-> b <-> c) under the faults the RabbitMQ
cluster takes in test_cluster_faults.py, for the side-by-side table.

The probe publishes at a, failing over to b; the store consumes at c. The fault is a,
the broker the publisher is connected to, killed -9 mid-publish: once with its KahaDB
kept (it comes back and forwards what it held), once with its data directory deleted
(it comes back empty), and that again while the store is away so that a holds a
backlog (the RabbitMQ cluster takes the same three and loses nothing). A network of
ActiveMQ brokers forwards, it does not replicate: what a confirmed and had not yet
forwarded to b is only on a's disk, and is lost with it. The disk rows measure that
loss instead of refusing it; all refuse a duplicate row or a row nobody confirmed. The
long run: ``MSGBUS_CHAOS_SCALE=20 pytest -m chaos tests/chaos/test_line_broker_faults.py``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from msgbus.network.local import LocalNetwork
from tests.chaos.harness import Pipeline, line_target, pipeline_for
from tests.fixtures.chaos import ChaosRow
from tests.fixtures.proxy import TcpProxy

pytestmark = [pytest.mark.chaos, pytest.mark.postgres, pytest.mark.activemq]

SCALE = int(os.environ.get("MSGBUS_CHAOS_SCALE", "1"))
CHUNK = 200 * SCALE


@pytest.fixture
def line_pipeline(
    request: pytest.FixtureRequest,
    activemq_line: LocalNetwork,
    postgres_url: str,
    tcp_proxy: Callable[[int], TcpProxy],
    tmp_path: Path,
) -> Iterator[Pipeline]:
    target = line_target(activemq_line, "activemq-line", ["a", "b"], "a")
    with pipeline_for(request, target, postgres_url, tcp_proxy(5432), tmp_path) as pipe:
        yield pipe


@pytest.mark.long  # test_pipeline_faults' line rows kill a line's broker in CI
def test_publishers_broker_killed_mid_publish(
    line_pipeline: Pipeline, chaos_table: list[ChaosRow]
) -> None:
    """a comes back with its KahaDB and forwards what it held: nothing is lost."""
    line_pipeline.start_consumer()
    line_pipeline.publish_through(_lose_first(line_pipeline, wipe=False), CHUNK)
    _repaired(line_pipeline)
    line_pipeline.settle()
    chaos_table.append(line_pipeline.verify())


def test_publishers_broker_and_disk_lost_mid_publish(
    line_pipeline: Pipeline, chaos_table: list[ChaosRow]
) -> None:
    """a comes back empty while the store keeps up: a had forwarded almost everything
    it confirmed within milliseconds, and the row says what it had not."""
    line_pipeline.start_consumer()
    line_pipeline.publish_through(_lose_first(line_pipeline, wipe=True), CHUNK)
    after = _repaired(line_pipeline)
    line_pipeline.settle_with_losses(after)
    chaos_table.append(line_pipeline.verify(may_lose=True))


def test_publishers_broker_and_disk_lost_with_a_backlog(
    line_pipeline: Pipeline, chaos_table: list[ChaosRow]
) -> None:
    """The store is away (an outage, a slow database) while five runs are confirmed:
    nothing asks for them at c, so a keeps them, and then a loses its disk. They are
    gone; what comes after a is back arrives whole."""
    for _ in range(5):
        line_pipeline.publish(CHUNK)
    _lose_first(line_pipeline, wipe=True)()
    after = _repaired(line_pipeline)
    line_pipeline.start_consumer()
    line_pipeline.settle_with_losses(after)
    chaos_table.append(line_pipeline.verify(may_lose=True))


def _lose_first(pipe: Pipeline, *, wipe: bool) -> Callable[[], None]:
    """kill -9 of a, the publisher's broker; with ``wipe`` its data directory too."""
    target = pipe.target
    assert target.kill_broker is not None and target.data_dir is not None
    kill, data = target.kill_broker, target.data_dir

    def fault() -> None:
        kill()
        if wipe:
            shutil.rmtree(data)

    return fault


def _repaired(pipe: Pipeline) -> set[str]:
    """a back (empty or not); returns what is then published through it."""
    assert pipe.target.restart_broker is not None
    pipe.target.restart_broker()
    pipe.recovered()
    before = set(pipe.accepted)
    run = pipe.publish(CHUNK, urls=pipe.target.publish_urls[:1])
    assert run.confirmed == CHUNK, run.output
    return pipe.accepted - before
