"""A one-shot command imports only what it uses.

Sites run `msgbus probe` and `msgbus publish` once per result, thousands of times a day,
and most of such a run is the interpreter importing modules. Each command below runs in
a child process under ``python -X importtime``; the modules it loads beyond a bare
``python -c pass`` must not include the heavy packages other commands need, and their
number stays under a budget with headroom. Not a timing test: the time is shown by
``msgbus bench startup``; this fails when the import set grows.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from msgbus.bench.startup import workloads
from msgbus.broker import BrokerConfig, BrokerThread
from msgbus.cli.main import COMMANDS
from msgbus.transport.url import BrokerURL

# Loaded by other commands (the store, the servers, terminal widgets), or only when a
# configuration file or MSGBUS_* variable asks for them.
NEVER = (
    "sqlalchemy",
    "alembic",
    "rich",
    "fastapi",
    "starlette",
    "uvicorn",
    "psycopg",
    "pymysql",
    "asyncio",
    "pydantic_settings",
    "yaml",
    "msgbus.store",
    "msgbus.broker",
    "msgbus.consume",
    "msgbus.gateway",
    "msgbus.network",
    "msgbus.presence",
    "msgbus.dashboard",
    "msgbus.bench",
)
# What no command needs to show its --help: the store, the servers, the drivers.
ANY_HELP = (
    "sqlalchemy",
    "alembic",
    "fastapi",
    "starlette",
    "uvicorn",
    "psycopg",
    "pymysql",
    "asyncio",
    "pydantic_settings",
    "prometheus_client",
    "msgbus.store",
    "msgbus.broker",
    "msgbus.consume.consumer",
    "msgbus.gateway",
    "msgbus.dashboard",
)
# `msgbus --help` lists the commands without loading any, nor the configuration.
NOT_FOR_HELP = (*NEVER, "pydantic", "msgbus.config", "msgbus.publish", "msgbus.cli.publish_cmd")

# Modules beyond `python -c pass`, measured when this test was written (2026-12-06):
# --help 37, publish/probe --help 190, publish/probe of one result 192, the largest
# other --help 238 (network, status: rich). ~20% headroom.
BUDGET = {"help": 45, "command help": 230, "run": 232, "any help": 290}


def _imported(argv: list[str], cwd: Path) -> tuple[set[str], str]:
    """The modules a child imports, and what it printed (stdout, then stderr)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSGBUS_")}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    names = re.findall(r"^import time:\s+\d+ \|\s+\d+ \| +(\S+)$", done.stderr, re.M)
    said = [line for line in done.stderr.splitlines() if not line.startswith("import time:")]
    return set(names), done.stdout + "\n".join(said)


def _check(argv: list[str], cwd: Path, forbidden: tuple[str, ...], budget: int) -> str:
    """What the command printed, once its imports were checked."""
    modules, output = _imported(argv, cwd)
    added = modules - _imported(["-c", "pass"], cwd)[0]
    heavy = sorted(m for m in added if any(m == f or m.startswith(f + ".") for f in forbidden))
    assert heavy == [], f"{argv[2:]} imports {heavy}"
    assert len(added) <= budget, f"{argv[2:]} imports {len(added)} modules (budget {budget})"
    return output


def test_msgbus_help(tmp_path: Path) -> None:
    _check(["-m", "msgbus", "--help"], tmp_path, NOT_FOR_HELP, BUDGET["help"])


@pytest.mark.parametrize("command", ["publish", "probe"])
def test_a_one_shot_commands_help(tmp_path: Path, command: str) -> None:
    _check(["-m", "msgbus", command, "--help"], tmp_path, NEVER, BUDGET["command help"])


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_commands_help(tmp_path: Path, command: str) -> None:
    _check(["-m", "msgbus", command, "--help"], tmp_path, ANY_HELP, BUDGET["any help"])


@pytest.mark.parametrize("name", ["msgbus publish one.txt", "msgbus probe -- check_ok"])
def test_publishing_one_result(tmp_path: Path, name: str) -> None:
    """The whole run, delivered and confirmed by a broker (the bench's own commands)."""
    with BrokerThread(BrokerConfig(port=0)) as broker:
        argv = workloads(BrokerURL(host="127.0.0.1", port=broker.port), tmp_path)[name]
        output = _check(argv[1:], tmp_path, NEVER, BUDGET["run"])
    assert "1 confirmed, 0 spooled" in output


def test_a_consumer_starts_without_the_migration_tool(tmp_path: Path) -> None:
    """`msgbus consume` checks the store's revision with two queries (is the version
    table there, what does it hold); Alembic (~0.2 s of its start) is for `msgbus db
    init` only."""
    store = f"sqlite:///{tmp_path / 'store.db'}"
    with BrokerThread(BrokerConfig(port=0)) as broker:
        url = f"stomp://127.0.0.1:{broker.port}"
        init, _ = _imported(["-m", "msgbus", "db", "init", "--store", store], tmp_path)
        consume = ["consume", "--broker", url, "--destination", "/queue/q", "--store", store]
        modules, output = _imported(["-m", "msgbus", *consume, "--drain"], tmp_path)
    assert "received 0, stored 0" in output, output
    alembic = [{m for m in found if m.split(".")[0] == "alembic"} for found in (init, modules)]
    assert alembic[0] and not alembic[1], "db init migrates with Alembic; consume does not"
