"""stomp.py is an extra: without it the benches that compare with it refuse with a
ConfigError naming the extra, and nothing else in msgbus imports it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from msgbus.bench import stomp_py
from msgbus.errors import ConfigError


def test_missing_stomp_py_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "stomp", None)  # None makes the import fail
    with pytest.raises(ConfigError, match=r"pip install 'msgbus\[bench\]'"):
        stomp_py()


def test_publishing_and_consuming_do_not_load_stomp_py() -> None:
    code = (
        "import sys, msgbus.publish, msgbus.consume, msgbus.bench.publish, "
        "msgbus.bench.consume, msgbus.cli.main\n"
        "assert 'stomp' not in sys.modules, 'stomp.py imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
