from __future__ import annotations

import gc

import click
import pytest
from click.testing import CliRunner

from msgbus.cli import main as cli_main
from msgbus.errors import ConfigError


@pytest.fixture
def gc_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """main() tunes the collector of the process it owns: recorded here, not applied to
    the test process (monkeypatch also restores the module's ownership flag)."""
    calls: list[str] = []
    monkeypatch.setattr(cli_main, "_owns_process", False)
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    monkeypatch.setattr(gc, "set_threshold", lambda *a: calls.append(f"threshold{a}"))
    return calls


@pytest.fixture
def command(monkeypatch: pytest.MonkeyPatch, gc_calls: list[str]) -> click.Group:
    group = cli_main.cli
    assert isinstance(group, click.Group)

    @click.command("exit-with")
    @click.argument("code", type=int)
    def exit_with(code: int) -> None:
        if code < 0:
            raise ConfigError("bad setting x: use y")
        click.get_current_context().exit(code)

    monkeypatch.setitem(group.commands, "exit-with", exit_with)
    return group


@pytest.mark.parametrize("code", [0, 3])
def test_exit_code_of_a_command_reaches_the_process(
    command: click.Group, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    monkeypatch.setattr("sys.argv", ["msgbus", "exit-with", str(code)])
    with pytest.raises(SystemExit) as info:
        cli_main.main()
    assert info.value.code == code


def test_msgbus_error_is_one_line_and_status_1(
    command: click.Group, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.argv", ["msgbus", "exit-with", "--", "-1"])
    with pytest.raises(SystemExit) as info:
        cli_main.main()
    assert info.value.code == 1
    assert capsys.readouterr().err == "msgbus: error: bad setting x: use y\n"


def test_every_listed_command_loads() -> None:
    group = cli_main.cli
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        assert isinstance(group.get_command(ctx, name), click.Command), name


def test_gc_is_tuned_by_the_console_script_only(
    command: click.Group, monkeypatch: pytest.MonkeyPatch, gc_calls: list[str]
) -> None:
    assert CliRunner().invoke(command, ["exit-with", "0"]).exit_code == 0
    assert gc_calls == []  # an application invoking the group keeps its GC policy
    monkeypatch.setattr("sys.argv", ["msgbus", "exit-with", "0"])
    with pytest.raises(SystemExit):
        cli_main.main()
    assert gc_calls == ["freeze", "threshold(20000, 20, 20)"]


@pytest.mark.parametrize("width", [60, 80, 200])
def test_help_lists_the_commands_as_click_would_after_importing_them(width: int) -> None:
    """`msgbus --help` reads each command's line from the registry, not from its module:
    it must be the line click would print from the command itself."""
    group = cli_main.cli
    ctx = click.Context(group, terminal_width=width)
    lazy, eager = ctx.make_formatter(), ctx.make_formatter()
    group.format_commands(ctx, lazy)
    click.Group.format_commands(group, ctx, eager)  # imports every command
    assert lazy.getvalue() == eager.getvalue()
    assert len(lazy.getvalue().splitlines()) == len(cli_main.COMMANDS) + 1
