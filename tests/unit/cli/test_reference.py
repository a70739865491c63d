"""The generated reference has something to say for everything it lists, and each
command's ``--help`` points to the handbook page that explains it."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import msgbus.errors
from msgbus.cli import handbook, reference
from msgbus.cli.main import COMMANDS, cli

DOCS = Path(__file__).resolve().parents[3] / "docs"


def test_every_cli_option_has_help() -> None:
    missing = [
        f"{name} {param.opts[0]}"
        for name, command in reference.cli_commands()
        for param in command.params
        if isinstance(param, click.Option) and not param.hidden and not (param.help or "").strip()
    ]
    assert missing == []


def test_the_cli_page_shows_defaults_not_sentinels() -> None:
    page = reference.cli_page()
    assert "<object" not in page and "Sentinel" not in page
    assert "| `--port` | integer | `61613` |" in page  # msgbus broker serve


@pytest.mark.parametrize("title", sorted(reference.config_roots()))
def test_every_configuration_field_has_a_description(title: str) -> None:
    model, _source = reference.config_roots()[title]
    fields = list(reference.config_fields(model))
    assert len(fields) > 20  # the walk reaches the nested sections
    assert [f.path for f in fields if not f.description.strip()] == []


def test_the_walk_reaches_nested_and_aliased_fields() -> None:
    model, _source = reference.config_roots()["msgbus.yaml"]
    paths = {f.path for f in reference.config_fields(model)}
    assert {"connection.tls.ca_path", "consumer.batch", "gateway.topics"} <= paths
    assert "connection.brokers" in paths and "connection.brokers.host" not in paths


def test_every_metric_has_a_description() -> None:
    found = list(reference.metrics())
    names = {m.name for m in found}
    assert {"msgbus_publisher_confirmed_total", "msgbus_broker_queue_depth"} <= names
    assert [m.name for m in found if not m.documentation.strip()] == []


def test_every_command_has_a_handbook_page() -> None:
    assert set(handbook.PAGES) == set(COMMANDS)


def _headings(page: str) -> set[str]:
    """A page's section anchors, as MkDocs' toc makes them."""
    text = reference.PAGES[page]() if page in reference.PAGES else (DOCS / page).read_text()
    slugs = set()
    for heading in re.findall(r"^#+ (.+)$", text, re.M):
        slug = re.sub(r"[^\w\s-]", "", heading.strip().lower())
        slugs.add(re.sub(r"[-\s]+", "-", slug))
    return slugs


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_ends_with_the_handbook_page(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    page = handbook.PAGES[name]
    last = [line.strip() for line in result.output.rstrip().splitlines()[-2:]]
    assert last == handbook.epilog(name).splitlines()[1:]
    path, _, anchor = page.partition("#")
    assert path in reference.PAGES or (DOCS / path).is_file(), page
    assert not anchor or anchor in _headings(path), page


def test_subcommands_inherit_the_page() -> None:
    result = CliRunner().invoke(cli, ["broker", "serve", "--help"])
    assert f"Handbook: docs/{handbook.PAGES['broker']}" in result.output


def test_version_names_the_handbook() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output.splitlines()[0] == f"msgbus {msgbus.__version__}"
    assert "Handbook: docs/index.md" in result.output


TROUBLESHOOTING = DOCS / "troubleshooting.md"


def test_troubleshooting_has_a_section_for_every_error() -> None:
    sections = set(re.findall(r"^## (\w+)$", TROUBLESHOOTING.read_text(), re.M))
    assert set(msgbus.errors.__all__) - sections == set()


def test_messages_quoted_in_troubleshooting_exist_in_the_code() -> None:
    quoted = re.findall(r"^> (.+)$", TROUBLESHOOTING.read_text(), re.M)
    assert quoted
    raised = {site.message for site in reference.raise_sites()}
    assert [q for q in quoted if q not in raised] == []


def test_raise_sites_read_fstrings_and_concatenations() -> None:
    sites = {(s.error, s.message) for s in reference.raise_sites()}
    assert (
        "ConfigError",
        "cannot serve metrics on {addr}:{port}: {exc.strerror}; choose another --metrics-port",
    ) in sites
    assert len(sites) > 150
