"""Directory queues (the ``dirq`` package) in the layouts APEL's SSM and loader use.

* SSM's receiver writes, and APEL's loader reads, ``PATH/incoming`` and ``PATH/reject``:
  dirq ``Queue`` elements with the schemas below (``body`` text, ``signer`` the
  verified DN, ``empaid`` the sender's ``empa-id`` header, ``error`` why rejected).
* SSM's sender reads (and APEL's unloader writes) its outgoing queue: a dirq
  ``QueueSimple``, one message body per element.

The optional dependency is loaded here, on first use.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Literal

from msgbus.errors import ConfigError

__all__ = [
    "SSM_REJECT_SCHEMA",
    "SSM_SCHEMA",
    "DirqFormat",
    "layout_of",
    "open_queue",
    "open_schema_queue",
]

DirqFormat = Literal["ssm", "simple"]

SSM_SCHEMA = {"body": "string", "signer": "string", "empaid": "string?"}
"""SSM's incoming queue (ssm2.Ssm2.QSCHEMA); APEL's loader reads it with an optional
``error`` field added."""
SSM_REJECT_SCHEMA = {"body": "string", "signer": "string?", "empaid": "string?", "error": "string"}


def _module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise ConfigError(
            "directory queues need the 'dirq' package; install it with: pip install 'msgbus[dirq]'"
        ) from exc


def layout_of(path: Path) -> Literal["queue", "simple", "none"]:
    """What is at ``path``: a dirq ``Queue`` (it keeps ``temporary`` and ``obsolete``
    directories), a ``QueueSimple`` (or an empty or missing directory: ``none``)."""
    if (path / "temporary").is_dir() or (path / "obsolete").is_dir():
        return "queue"
    if not path.is_dir() or not any(path.iterdir()):
        return "none"
    return "simple"


def open_queue(path: Path) -> Any:
    """``dirq.QueueSimple.QueueSimple(path)`` (made when missing), or a ConfigError
    naming the extra it needs, or saying the directory holds another kind of queue."""
    module = _module("dirq.QueueSimple")
    if layout_of(path) == "queue":
        raise ConfigError(
            f"{path} is a dirq Queue (as SSM's receiver writes), not a QueueSimple outgoing "
            "queue (as SSM's sender and APEL's unloader use); give the outgoing queue's path"
        )
    try:
        return module.QueueSimple(str(path))
    except OSError as exc:
        raise ConfigError(f"cannot open the directory queue {path}: {exc}") from None


def open_schema_queue(path: Path, schema: dict[str, str]) -> Any:
    """``dirq.queue.Queue(path, schema=schema)`` (made when missing), or a ConfigError
    when ``path`` holds a QueueSimple or cannot be made."""
    module = _module("dirq.queue")
    if layout_of(path) == "simple":
        raise ConfigError(
            f"{path} holds a dirq QueueSimple, not a dirq Queue as SSM's receiver writes; "
            "give another directory, or --dirq-format simple"
        )
    try:
        return module.Queue(str(path), schema=schema)
    except OSError as exc:
        raise ConfigError(f"cannot open the directory queue {path}: {exc}") from None
