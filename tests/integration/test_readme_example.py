"""The README's and the handbook's shell and Python examples, run as written.

Every ```sh and ```python block in README.md and docs/ carries a mark on the line
before it: ``<!-- example: runs ... -->`` (run here, on an embedded broker and SQLite;
``prints "TEXT"`` names a line the output must hold) or ``<!-- example: not run: WHY -->``
(needs real grid hosts, or serves until stopped). An unmarked block fails the first test,
so no example is left out by accident. A ```yaml block is marked
``<!-- example: config msgbus.yaml -->`` (or another file of the configuration
reference) and must validate against that file's model.

The one exception is the README's first block, the two commands on a fresh machine,
whose lines must stay exactly as they are: `.ci/run` runs them (a venv without extras,
then the test suite), which the last test checks.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from msgbus.broker import BrokerConfig
from msgbus.broker.server import BrokerThread
from msgbus.cli.reference import config_roots

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
_BLOCK = re.compile(
    r"(?:<!-- example: (?P<mark>[^\n]*?) -->\n)?```(?P<lang>sh|python|yaml)\n(?P<code>.*?)```",
    re.S,
)
_PRINTS = re.compile(r'prints "([^"]+)"')
PORT = "61613"  # the examples' broker port; each run swaps in a free one


@dataclass(frozen=True)
class Example:
    where: str  # page:line
    lang: str
    code: str
    mark: str | None

    @property
    def runs(self) -> bool:
        return self.mark is not None and self.mark.startswith("runs")

    @property
    def prints(self) -> list[str]:
        return _PRINTS.findall(self.mark or "")


def _examples() -> list[Example]:
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for m in _BLOCK.finditer(text):
            line = text.count("\n", 0, m.start("lang")) + 1
            where = f"{page.relative_to(ROOT)}:{line}"
            found.append(Example(where, m["lang"], m["code"], m["mark"]))
    return found


EXAMPLES = [e for e in _examples() if e.lang != "yaml"]
CONFIGS = [e for e in _examples() if e.lang == "yaml"]
FRESH_MACHINE = EXAMPLES[0]  # README.md's first block, run by .ci/run
RUNNABLE = [e for e in EXAMPLES if e.runs]


def test_every_example_is_marked_and_some_run() -> None:
    unmarked = [e.where for e in EXAMPLES[1:] if e.mark is None]
    assert unmarked == [], "mark these 'example: runs' or 'example: not run: WHY'"
    bad = [e.where for e in EXAMPLES if e.mark and not e.runs and not e.mark.startswith("not run:")]
    assert bad == []
    assert {e.lang for e in RUNNABLE} == {"sh", "python"}
    assert any(e.where.startswith("README.md") for e in RUNNABLE)


def test_every_configuration_example_validates() -> None:
    roots = config_roots()
    assert CONFIGS
    for example in CONFIGS:
        title = (example.mark or "").removeprefix("config ")
        assert title in roots, f"{example.where}: mark it 'example: config FILE'"
        model, _source = roots[title]
        model.model_validate(yaml.safe_load(example.code))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_python(example: Example, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    with BrokerThread(BrokerConfig(port=0)) as broker:
        code = example.code.replace(PORT, str(broker.port))
        exec(compile(code, example.where, "exec"), {})
    return capsys.readouterr().out


def _run_shell(example: Example, tmp_path: Path) -> str:
    # `msgbus` as this checkout's code, whatever the installed console script points at.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "msgbus"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m msgbus "$@"\n')
    wrapper.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT),
    }
    code = example.code.replace(PORT, str(_free_port()))
    # A session of its own: a background broker the example started dies with it.
    proc = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", code],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == 0, f"{example.where} exited {proc.returncode}:\n{out}"
    return out


@pytest.mark.parametrize("example", RUNNABLE, ids=[e.where for e in RUNNABLE])
def test_example_runs(
    example: Example,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # the spool's default home
    monkeypatch.chdir(tmp_path)  # the examples' files and databases land here
    if example.lang == "python":
        out = _run_python(example, tmp_path, capsys)
    else:
        out = _run_shell(example, tmp_path)
    lines = out.splitlines()
    for expected in example.prints:
        assert expected in lines, f"{example.where} did not print {expected!r}:\n{out}"


def _slug(heading: str) -> str:
    """MkDocs' anchor for a heading (its toc extension's default slugify)."""
    text = re.sub(r"[^\w\s-]", "", heading.strip().lower())
    return re.sub(r"[-\s]+", "-", text)


def test_the_readme_links_into_the_handbook_resolve() -> None:
    """mkdocs build --strict checks the handbook's links; the README is outside it."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\((docs/[^)#]+)(?:#([^)]+))?\)", readme)
    assert links
    for path, anchor in links:
        target = ROOT / path
        assert target.is_file(), path
        if anchor:
            headings = re.findall(r"^#+ (.+)$", target.read_text(encoding="utf-8"), re.M)
            assert anchor in {_slug(h) for h in headings}, f"{path}#{anchor}"


def test_ci_runs_the_two_commands_for_a_fresh_machine() -> None:
    assert FRESH_MACHINE.where == "README.md:8" and FRESH_MACHINE.mark is None
    commands = [line.split("#")[0].strip() for line in FRESH_MACHINE.code.splitlines()]
    assert commands == ["pip install . && msgbus demo", "bash deploy/test.sh"]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "install -q --disable-pip-version-check .\n" in ci
    assert '"$bare/venv/bin/msgbus" demo' in ci
    assert "\nbash deploy/test.sh\n" in ci
