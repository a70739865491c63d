"""The README's Python example, run as written against an embedded broker."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from msgbus.broker import BrokerConfig
from msgbus.broker.server import BrokerThread

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_python_example_publishes_and_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = README.read_text(encoding="utf-8")
    [code] = re.findall(
        r"<!-- the README test runs this block.*?-->\n```python\n(.*?)```", text, re.S
    )
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # the spool's default home
    monkeypatch.chdir(tmp_path)  # example.db lands here
    with BrokerThread(BrokerConfig(port=0)) as broker:
        exec(compile(code.replace("61613", str(broker.port)), "README.md", "exec"), {})
    assert capsys.readouterr().out.split("\n")[:3] == ["1 confirmed", "1 confirmed", "2 stored"]
