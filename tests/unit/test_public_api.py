"""Every public name of a package root is in its ``__all__``, and every ``__all__`` name exists."""

from __future__ import annotations

import importlib
import types

import pytest

PACKAGES = [
    "msgbus",
    "msgbus.consume",
    "msgbus.errors",
    "msgbus.publish",
    "msgbus.schema",
    "msgbus.stomp",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_complete_and_importable(name: str) -> None:
    module = importlib.import_module(name)
    exported = set(module.__all__)
    public = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_")
        and not isinstance(value, types.ModuleType)
        and getattr(value, "__module__", name).startswith("msgbus")
        and attr not in {"annotations", "TYPE_CHECKING"}
    }
    assert public <= exported, f"public but not in __all__: {sorted(public - exported)}"
    missing = [attr for attr in exported if not hasattr(module, attr)]
    assert not missing, f"in __all__ but not defined: {missing}"
