"""Directory queues (the ``dirq`` package's QueueSimple), as stompclt and APEL's SSM use
them: the optional dependency is loaded here, on first use."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from msgbus.errors import ConfigError

__all__ = ["open_queue"]


def open_queue(path: Path) -> Any:
    """``dirq.QueueSimple.QueueSimple(path)`` (made when missing), or a ConfigError
    naming the extra it needs."""
    try:
        module = importlib.import_module("dirq.QueueSimple")
    except ModuleNotFoundError as exc:
        raise ConfigError(
            "directory queues need the 'dirq' package; install it with: pip install 'msgbus[dirq]'"
        ) from exc
    return module.QueueSimple(str(path))
