"""Where the handbook explains each command: the last lines of its ``--help``.

There is no hosted site: the handbook is ``docs/`` in the msgbus sources (``mkdocs
build`` renders it), so the pointer is a path there. Plain strings only: ``msgbus
--help`` must stay cheap.
"""

from __future__ import annotations

import click

__all__ = ["PAGES", "ROOT_EPILOG", "VERSION_MESSAGE", "epilog", "with_epilog"]

# command -> page under docs/ (with its section)
PAGES = {
    "audit": "guides/central-operator.md#audit-and-freshness",
    "bench": "performance.md#how-to-rerun-them",
    "broker": "guides/network-operator.md#the-embedded-broker",
    "consume": "guides/central-operator.md#consumers-and-stores",
    "ctl": "guides/central-operator.md#status-registry-and-control",
    "dashboard": "guides/central-operator.md#dashboards",
    "db": "guides/central-operator.md#migrations",
    "demo": "index.md",
    "gateway": "guides/integrator.md#the-ams-gateway",
    "nagios-bridge": "guides/integrator.md#nagios-and-icinga",
    "network": "guides/network-operator.md#topologies-render-up-verify-apply",
    "probe": "guides/site-admin.md#probes",
    "publish": "guides/site-admin.md#publishing-result-files",
    "registry": "guides/central-operator.md#status-registry-and-control",
    "schema": "reference/schemas.md",
    "spool": "guides/site-admin.md#spool",
    "status": "guides/central-operator.md#status-registry-and-control",
    "watch": "guides/central-operator.md#status-registry-and-control",
}

_WHERE = "in the msgbus sources; every option: docs/reference/cli.md"
_ROOT = f"Handbook: docs/index.md ({_WHERE})"
ROOT_EPILOG = f"\b\n{_ROOT}"
VERSION_MESSAGE = f"%(prog)s %(version)s\n{_ROOT}"


def epilog(name: str) -> str:
    # \b keeps click from rewrapping the path.
    return f"\b\nHandbook: docs/{PAGES[name]}\n({_WHERE})"


def with_epilog(name: str, command: click.Command) -> click.Command:
    """Give ``command`` and its subcommands the epilog naming ``name``'s page."""
    text = epilog(name)

    def mark(cmd: click.Command) -> None:
        cmd.epilog = cmd.epilog or text
        if isinstance(cmd, click.Group):
            for sub in cmd.commands.values():
                mark(sub)

    mark(command)
    return command
