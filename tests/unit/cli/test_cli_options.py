"""Every option of every command says what it is for, and ``--broker`` means one thing
everywhere: a broker's URL (``network up/down`` name brokers with ``--only``)."""

from __future__ import annotations

import click

from msgbus.cli.main import cli


def _commands(group: click.Group, path: str = "msgbus") -> list[tuple[str, click.Command]]:
    out = []
    for name in group.list_commands(click.Context(group)):
        command = group.get_command(click.Context(group), name)
        assert command is not None, name
        if isinstance(command, click.Group):
            out += _commands(command, f"{path} {name}")
        else:
            out.append((f"{path} {name}", command))
    return out


def test_every_option_has_help() -> None:
    missing = [
        f"{path} {param.opts[0]}"
        for path, command in _commands(cli)
        for param in command.params
        if isinstance(param, click.Option) and not param.help and param.opts[0] != "--help"
    ]
    assert missing == []


def test_broker_is_always_a_url() -> None:
    for path, command in _commands(cli):
        for param in command.params:
            if isinstance(param, click.Option) and "--broker" in param.opts:
                assert "://" in (param.help or "") or param.metavar == "URL", path
