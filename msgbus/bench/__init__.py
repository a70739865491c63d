"""Benchmark workloads: raw-socket STOMP baseline clients and broker comparisons."""

from __future__ import annotations

import importlib
from types import ModuleType

from msgbus.errors import ConfigError

__all__ = ["stomp_py"]


def stomp_py() -> ModuleType:
    """The stomp.py module, the benches' "naive peer" baseline; imported here only,
    because stomp.py is an extra (``msgbus[bench]``), not needed to publish or consume."""
    try:
        return importlib.import_module("stomp")
    except ImportError:
        raise ConfigError(
            "this bench compares msgbus with stomp.py, which is not installed: "
            "pip install 'msgbus[bench]'"
        ) from None
