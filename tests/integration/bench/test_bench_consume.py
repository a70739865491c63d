"""`msgbus bench consume` against a real ActiveMQ and PostgreSQL: every consumer drains its
own durable subscription, the ratios print, and the bench leaves no rows behind."""

from __future__ import annotations

import re

import sqlalchemy as sa
from click.testing import CliRunner

from msgbus.bench.consume import CLI, NAIVE, RAW_ACKS, RAW_CUMULATIVE, RAW_DRAIN, ours_name
from msgbus.cli.bench_cmd import bench
from msgbus.store.tables import ledger_gaps, ledger_producers, table_for
from tests.fixtures.activemq import ActiveMQ


def test_bench_consume_drains_each_subscription_and_cleans_up(
    activemq: ActiveMQ, postgres_url: str
) -> None:
    url = f"stomp://{activemq.host}:{activemq.port}"
    result = CliRunner().invoke(
        bench,
        [
            "consume",
            "--broker",
            url,
            "--store",
            postgres_url,
            "--count",
            "400",
            "--naive-count",
            "40",
            "--batch",
            "100",
            "--rounds",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = []
    for line in result.output.splitlines():
        match = re.match(r"(.+?)\s+(\d+)\s+([\d,]+)\s+([\d,]+)$", line)
        if match:
            rows.append((match.group(1), int(match.group(2))))
    assert len(rows) == 2 * 8  # every consumer in each round
    assert dict(rows) == {
        RAW_DRAIN: 400,
        RAW_ACKS: 400,
        ours_name(100, "client-individual"): 400,
        ours_name(100, "client"): 400,
        ours_name(100, "client-individual", ledger=False): 400,
        NAIVE: 40,
        RAW_CUMULATIVE: 400,
        CLI: 400,
    }
    assert re.search(r"with the completeness ledger / without it: [\d.]+x", result.output)
    assert re.search(r"with ack:client .*: [\d.]+x ACK each", result.output)
    assert re.search(
        r"msgbus consume, whole process, defaults / raw with one ACK per batch: [\d.]+x",
        result.output,
    )
    assert re.search(
        r"raw drain: [\d.]+x +/ raw with ACK each: [\d.]+x +/ naive peer: [\d.]+x", result.output
    )
    assert re.search(r"raw with ACK each / raw drain: [\d.]+x", result.output)
    assert re.search(r"medians of 2 rounds; ranges: drain [\d.]+-[\d.]+x", result.output)
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as db:
            for table in (table_for("ProbeResult"), ledger_producers, ledger_gaps):
                assert db.scalar(sa.select(sa.func.count()).select_from(table)) == 0
    finally:
        engine.dispose()
