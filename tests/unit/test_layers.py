"""No import runs against the layers the README draws (protocol -> transport -> publish /
consume / store -> broker / network / presence / dashboard -> CLI): each package may
import only what this table allows, checked on every import statement of the package."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "msgbus"

_BASE = {"errors"}
_FOUNDATION = _BASE | {"stomp", "metrics", "permissions", "schema", "security"}
_SPINE = _FOUNDATION | {"transport", "config"}
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "permissions": set(),
    "stomp": _BASE,
    "metrics": _BASE,
    "schema": _BASE,
    "security": _BASE,
    "transport": _BASE | {"stomp"},
    "config": _BASE | {"transport"},
    "store": _FOUNDATION,
    # The publisher numbers messages with the ledger's arithmetic (store.gaps).
    "publish": _SPINE | {"store"},
    "consume": _SPINE | {"store"},
    "broker": _SPINE,
    "network": _SPINE,
    "presence": _SPINE,
    "dashboard": _SPINE | {"store", "consume"},
    "demo": _SPINE | {"store", "consume", "publish", "broker"},
    "bench": _SPINE | {"store", "consume", "publish", "broker", "network"},
    "cli": {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()} - {"__init__"},
}


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        out |= {_package(n) for n in names if n == "msgbus" or n.startswith("msgbus.")}
    return out


def test_every_package_is_in_the_table() -> None:
    packages = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()}
    packages -= {"__init__", "__main__", "__pycache__", "py"}  # py: py.typed
    assert packages - ALLOWED.keys() == set()


def test_no_import_against_the_layers() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        source = relative.parts[0].removesuffix(".py")
        if source in ("__init__", "__main__"):
            continue  # the root package: version and a lazy facade
        for target in _imports(path) - {source, ""}:  # "" is msgbus.__version__
            if target not in ALLOWED[source]:
                wrong.append(f"{relative} imports msgbus.{target}")
    assert wrong == []
