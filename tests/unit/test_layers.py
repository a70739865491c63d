"""No import runs against the layers docs/concepts/architecture.md draws (protocol -> transport ->
publish / consume / store -> broker / network / presence / dashboard -> CLI): each package may
import only what this table allows, checked on every import statement of the package
(module level, in functions and under ``TYPE_CHECKING`` alike), and no two modules
import each other, directly or around a circle."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

import msgbus

PACKAGE = Path(__file__).resolve().parents[2] / "msgbus"

_BASE = {"errors"}
_FOUNDATION = _BASE | {"stomp", "metrics", "numbering", "permissions", "schema", "security"}
_SPINE = _FOUNDATION | {"transport", "config"}
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "permissions": set(),
    "numbering": set(),
    "stomp": _BASE,
    "metrics": _BASE,
    "schema": _BASE,
    "security": _BASE,
    "transport": _BASE | {"stomp", "metrics"},
    "config": _BASE | {"permissions", "transport"},
    "store": _FOUNDATION,
    # The publisher drains directory queues through store.dirq (loaded for --dirq only).
    "publish": _SPINE | {"store"},
    "consume": _SPINE | {"store"},
    "broker": _SPINE,
    "network": _SPINE,
    "presence": _SPINE,
    "dashboard": _SPINE | {"store", "consume"},
    "demo": _SPINE | {"store", "consume", "publish", "broker"},
    "bench": _SPINE | {"store", "consume", "publish", "broker", "network", "gateway"},
    "gateway": _SPINE | {"consume", "publish"},
}
ALLOWED["cli"] = set(ALLOWED)  # the top: it may use every layer

# Terminal libraries are the CLI layer's: the layers below return values, raise errors.
CLI_LIBRARIES = {"click", "rich"}


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _modules(package: Path = PACKAGE) -> dict[str, Path]:
    out = {}
    for path in package.rglob("*.py"):
        parts = (package.name, *path.relative_to(package).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imported(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """The modules (or packages) that the file of module ``name`` imports."""
    # A relative import counts from the file's package (its own name for __init__.py).
    anchor = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = anchor[: len(anchor) - node.level + 1] if node.level else []
            source = ".".join([*base, *([node.module] if node.module else [])])
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                # The root's lazy names (msgbus.Publisher) are their modules' imports.
                lazy = msgbus._LAZY.get(alias.name) if source == "msgbus" else None
                out.add(submodule if submodule in modules else lazy or source)
    return out


def _internal(imported: set[str]) -> set[str]:
    return {m for m in imported if m == "msgbus" or m.startswith("msgbus.")}


def test_every_package_is_in_the_table() -> None:
    packages = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()}
    packages -= {"__init__", "__main__", "__pycache__", "py"}  # py: py.typed
    assert packages - ALLOWED.keys() == set()


def test_the_table_is_a_layering() -> None:
    # CycleError if two layers may use each other, directly or around a circle.
    graphlib.TopologicalSorter({k: v - {k} for k, v in ALLOWED.items()}).prepare()


def test_no_import_against_the_layers() -> None:
    modules = _modules()
    wrong = []
    for name, path in sorted(modules.items()):
        source = _package(name)
        if source in ("", "__main__"):
            continue  # the root package: version and a lazy facade
        targets = {_package(m) for m in _internal(_imported(path, name, modules))}
        for target in targets - {source, ""}:  # "": msgbus.__version__
            if target not in ALLOWED[source]:
                wrong.append(f"{path.relative_to(PACKAGE)} imports msgbus.{target}")
    assert sorted(wrong) == []


def test_only_the_cli_uses_click_and_rich() -> None:
    modules = _modules()
    users = {
        str(path.relative_to(PACKAGE))
        for name, path in modules.items()
        if _package(name) != "cli"
        and {m.split(".")[0] for m in _imported(path, name, modules)} & CLI_LIBRARIES
    }
    assert sorted(users) == []


def _reach(graph: dict[str, set[str]], start: str) -> set[str]:
    reach: set[str] = set()
    todo = [start]
    while todo:
        for nxt in graph[todo.pop()] - reach:
            reach.add(nxt)
            todo.append(nxt)
    return reach


def _cycles(modules: dict[str, Path]) -> list[set[str]]:
    graph = {
        name: _imported(path, name, modules) & modules.keys() for name, path in modules.items()
    }
    # A module's own package is imported before it; that edge closes no circle.
    graph = {
        name: {m for m in deps if not name.startswith(f"{m}.")} for name, deps in graph.items()
    }
    cycles: list[set[str]] = []
    for name in sorted(graph):
        reach = _reach(graph, name)
        if name in reach and not any(name in cycle for cycle in cycles):
            cycles.append({m for m in reach if name in _reach(graph, m)})
    return cycles


def test_no_import_cycle_between_modules() -> None:
    assert _cycles(_modules()) == []


@pytest.mark.parametrize(
    ("line", "target"),
    [
        ("import msgbus.cli.main", "cli"),
        ("from msgbus.cli import main", "cli"),
        ("from msgbus import cli", "cli"),
        ("from msgbus import Consumer", "consume"),
        ("def f():\n    from msgbus.cli.main import main", "cli"),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import msgbus.cli", "cli"),
        ("from ...cli import main", "cli"),
        ("from ... import cli", "cli"),
        ("from .. import cli", "store"),  # msgbus.store.cli, not msgbus.cli
    ],
)
def test_the_checker_sees_every_form_of_import(tmp_path: Path, line: str, target: str) -> None:
    package = tmp_path / "msgbus"
    (package / "store" / "sub").mkdir(parents=True)
    (package / "cli").mkdir()
    for init in (package, package / "store", package / "store" / "sub", package / "cli"):
        (init / "__init__.py").touch()
    (package / "cli" / "main.py").touch()
    (package / "store" / "sub" / "x.py").write_text(line + "\n", encoding="utf-8")
    modules = _modules(package)
    imported = _imported(package / "store" / "sub" / "x.py", "msgbus.store.sub.x", modules)
    assert {_package(m) for m in _internal(imported)} == {target}


def test_the_cycle_finder_finds_a_circle_through_three_modules(tmp_path: Path) -> None:
    package = tmp_path / "msgbus"
    package.mkdir()
    (package / "__init__.py").touch()
    for name, imports in {"a": "b", "b": "c", "c": "a", "d": "a"}.items():
        (package / f"{name}.py").write_text(f"import msgbus.{imports}\n", encoding="utf-8")
    assert _cycles(_modules(package)) == [{"msgbus.a", "msgbus.b", "msgbus.c"}]
