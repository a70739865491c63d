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
import re
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


# The intermediate directories both kinds of queue keep their elements in.
_INTERMEDIATE = re.compile(r"[0-9a-f]{8}")


def _module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise ConfigError(
            "directory queues need the 'dirq' package; install it with: pip install 'msgbus[dirq]'"
        ) from exc


def layout_of(path: Path) -> Literal["queue", "simple", "none", "other"]:
    """What is at ``path``: a dirq ``Queue`` (it keeps ``temporary`` and ``obsolete``
    directories), a ``QueueSimple`` (only 8-hex-digit directories), nothing yet (empty
    or missing), or something else."""
    if (path / "temporary").is_dir() or (path / "obsolete").is_dir():
        return "queue"
    if not path.is_dir():
        return "other" if path.exists() else "none"
    names = [entry.name for entry in path.iterdir()]
    if not names:
        return "none"
    return "simple" if all(_INTERMEDIATE.fullmatch(name) for name in names) else "other"


def _not_a_queue(path: Path) -> ConfigError:
    return ConfigError(
        f"{path} is not a directory queue (it holds files that dirq does not make); "
        "give the queue's own directory"
    )


def open_queue(path: Path) -> Any:
    """``dirq.QueueSimple.QueueSimple(path)`` (made when missing), or a ConfigError
    naming the extra it needs, or saying the directory holds another kind of queue."""
    module = _module("dirq.QueueSimple")
    layout = layout_of(path)
    if layout == "other":
        raise _not_a_queue(path)
    if layout == "queue":
        raise ConfigError(
            f"{path} is a dirq Queue (the format of SSM's receiving side, incoming/ and "
            "reject/), not a QueueSimple (the format of SSM's outgoing queue); give a "
            "QueueSimple's directory"
        )
    try:
        return module.QueueSimple(str(path))
    except OSError as exc:
        raise ConfigError(f"cannot open the directory queue {path}: {exc}") from None


def open_schema_queue(path: Path, schema: dict[str, str]) -> Any:
    """``dirq.queue.Queue(path, schema=schema)`` (made when missing), or a ConfigError
    when ``path`` holds a QueueSimple or cannot be made."""
    module = _module("dirq.queue")
    layout = layout_of(path)
    if layout == "other":
        raise _not_a_queue(path)
    if layout == "simple":
        raise ConfigError(
            f"{path} holds a dirq QueueSimple, not a dirq Queue as SSM's receiver writes; "
            "give another directory, or --dirq-format simple"
        )
    try:
        return module.Queue(str(path), schema=schema)
    except OSError as exc:
        raise ConfigError(f"cannot open the directory queue {path}: {exc}") from None
