"""MkDocs hook: the pages that are not written under docs/.

- the reference pages, generated from the code at build time (msgbus/cli/reference.py);
- the READMEs that live next to what they describe (message formats, broker topologies,
  scaling), served as handbook pages from their one copy, their links between each
  other rewritten to the pages they became.
"""

from __future__ import annotations

import posixpath
import sys
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
# The handbook documents this source tree, whichever msgbus is installed.
sys.path.insert(0, str(ROOT))

from msgbus.cli.reference import PAGES  # noqa: E402

# file in the repository -> its page in the handbook
REPO_PAGES = {
    "schemas/README.md": "concepts/wire-format.md",
    "brokers/README.md": "guides/broker-topologies.md",
    "deploy/SCALING.md": "scaling.md",
}


def _relinked(text: str, source: str, page: str) -> str:
    for other, other_page in REPO_PAGES.items():
        as_written = posixpath.relpath(other, posixpath.dirname(source))
        as_page = posixpath.relpath(other_page, posixpath.dirname(page))
        text = text.replace(f"]({as_written})", f"]({as_page})")
    return text


def on_files(files: Files, config: Any) -> Files:
    for path, make in PAGES.items():
        files.append(File.generated(config, path, content=make()))
    for source, page in REPO_PAGES.items():
        text = (ROOT / source).read_text(encoding="utf-8")
        files.append(File.generated(config, page, content=_relinked(text, source, page)))
    return files
