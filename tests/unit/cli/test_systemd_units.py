"""deploy/systemd: every long-running command has a unit that restarts it on failure, and
every msgbus command line in a unit is one the CLI takes (options it knows)."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

import click
import pytest

from msgbus.cli.main import cli

UNITS = Path(__file__).resolve().parents[3] / "deploy" / "systemd"
MSGBUS = "/usr/local/bin/msgbus"
LONG_RUNNING = {"broker", "consume", "gateway", "nagios-bridge"}


def _service(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    # systemd continues a line with a trailing backslash.
    parser.read_string(path.read_text().replace("\\\n", " "))
    return parser["Service"]


def _command(service: configparser.SectionProxy) -> list[str]:
    return shlex.split(service["ExecStart"])


def _services() -> list[Path]:
    return sorted(UNITS.glob("*.service"))


def test_each_long_running_command_has_a_unit_that_restarts_it() -> None:
    restarted = {}
    for path in _services():
        service = _service(path)
        args = _command(service)
        if args[0] == MSGBUS and args[1] in LONG_RUNNING:
            restarted[args[1]] = service.get("Restart")
    assert set(restarted) == LONG_RUNNING
    assert all(r in ("on-failure", "always") for r in restarted.values()), restarted


@pytest.mark.parametrize("path", _services(), ids=lambda p: p.name)
def test_the_command_lines_use_options_the_cli_knows(path: Path) -> None:
    args = _command(_service(path))
    if args[0] != MSGBUS:
        return  # a shell wrapper (msgbus-probe@): its msgbus line is built at run time
    group: click.Group = cli
    name, rest = args[1], args[2:]
    if name in ("broker", "db", "spool"):  # groups: the subcommand follows
        sub = group.get_command(click.Context(group), name)
        assert isinstance(sub, click.Group)
        group, name, rest = sub, rest[0], rest[1:]
    command = group.get_command(click.Context(group), name)
    assert command is not None, f"{path.name}: no command {name}"
    known = {opt for param in command.params for opt in param.opts}
    used = {arg.split("=", 1)[0] for arg in rest if arg.startswith("--")}
    assert used <= known, f"{path.name}: unknown options {sorted(used - known)}"
