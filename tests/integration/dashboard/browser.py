"""Headless Chromium for the dashboard tests, and a tiny PNG reader for its screenshots.

``dump_dom`` gives the DOM after the page's load event; ``screenshot`` a PNG;
``page`` keeps a browser open with a DevTools port, whose plain-HTTP ``/json/list``
shows each tab's current title: the page puts its status counts there, so live
updates are observable without a WebSocket client.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.fixtures.services import require_service

__all__ = ["COLOURS", "Chromium", "GridCells", "Image", "chromium_or_skip", "grid", "read_png"]

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--force-color-profile=srgb",
    "--hide-scrollbars",
)


# The page's CSS status colours (msgbus/dashboard/static/index.html).
COLOURS = {
    "OK": (46, 160, 67),
    "WARNING": (240, 180, 0),
    "CRITICAL": (220, 40, 40),
    "UNKNOWN": (130, 90, 200),
}


class GridCells(HTMLParser):
    """(site, metric) -> status of the rendered grid cells, in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple[str, str], str] = {}
        self.order: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "td" and a.get("data-status"):
            key = (a["data-site"] or "", a["data-metric"] or "")
            self.cells[key] = a["data-status"] or ""
            self.order.append(key)
            assert f"status-{a['data-status']}" in (a.get("class") or "")


def grid(dom: str) -> GridCells:
    parser = GridCells()
    parser.feed(dom)
    return parser


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Chromium:
    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir

    def _run(self, *args: str, timeout: float = 90) -> str:
        profile = tempfile.mkdtemp(prefix="chromium-", dir=self.workdir)
        proc = subprocess.run(
            [self.binary, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0:
            raise AssertionError(f"chromium failed ({proc.returncode}): {proc.stderr[-2000:]}")
        return proc.stdout

    def dump_dom(self, url: str) -> str:
        return self._run("--dump-dom", url)

    def screenshot(self, url: str, path: Path, size: tuple[int, int] = (1200, 800)) -> Path:
        self._run(f"--window-size={size[0]},{size[1]}", f"--screenshot={path}", url)
        assert path.is_file(), f"chromium wrote no screenshot at {path}"
        return path

    @contextlib.contextmanager
    def page(self, url: str) -> Iterator[LivePage]:
        port = _free_port()
        profile = tempfile.mkdtemp(prefix="chromium-", dir=self.workdir)
        proc = subprocess.Popen(
            [self.binary, *FLAGS, f"--user-data-dir={profile}",
             f"--remote-debugging-port={port}", url],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            yield LivePage(port, url)
        finally:
            proc.kill()
            proc.wait(10)


class LivePage:
    """A tab of a running headless Chromium, seen through the DevTools HTTP endpoint."""

    def __init__(self, port: int, url: str) -> None:
        self.port = port
        self.url = url

    def title(self) -> str | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list", timeout=2) as r:
                targets = json.load(r)
        except OSError:
            return None  # the browser is still starting
        for target in targets:
            if target.get("type") == "page" and target.get("url", "").startswith(self.url):
                return str(target.get("title", ""))
        return None

    def wait_title(self, predicate: Callable[[str], bool], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        title = None
        while time.monotonic() < deadline:
            title = self.title()
            if title is not None and predicate(title):
                return title
            time.sleep(0.2)
        raise AssertionError(f"page title never matched within {timeout:g} s; last: {title!r}")


def chromium_or_skip(workdir: Path) -> Chromium:
    """Chromium, or the service rule: skipped, or a failure under CI=true."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser") or ""
    require_service("headless Chromium (apt-get install chromium)", lambda: binary)
    return Chromium(binary, workdir)


@dataclass(frozen=True)
class Image:
    width: int
    height: int
    channels: int
    rows: list[bytes]

    def pixel(self, x: int, y: int) -> tuple[int, int, int]:
        i = x * self.channels
        r, g, b = self.rows[y][i : i + 3]
        return (r, g, b)

    def boxes(self, colours: dict[str, tuple[int, int, int]]) -> dict[str, tuple[int, int, int]]:
        """For each named colour: (pixel count, centre x, centre y) of exact matches."""
        found: dict[str, list[int]] = {name: [0, 0, 0] for name in colours}
        wanted = {rgb: name for name, rgb in colours.items()}
        for y in range(self.height):
            row = self.rows[y]
            for x in range(self.width):
                i = x * self.channels
                name = wanted.get((row[i], row[i + 1], row[i + 2]))
                if name is not None:
                    acc = found[name]
                    acc[0] += 1
                    acc[1] += x
                    acc[2] += y
        return {
            name: (n, sx // n, sy // n) if n else (0, -1, -1) for name, (n, sx, sy) in found.items()
        }


def read_png(path: Path) -> Image:
    """8-bit RGB/RGBA, non-interlaced PNG (what Chromium writes) to rows of bytes."""
    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        pytest.fail(f"{path} is not a PNG")
    pos, idat = 8, b""
    width = height = channels = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        chunk = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
            if depth != 8 or colour not in (2, 6) or interlace:
                pytest.fail(
                    f"unsupported PNG: depth {depth}, colour {colour}, interlace {interlace}"
                )
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        elif kind == b"IEND":
            break
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        ftype = raw[start]
        line = bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = prev[i]
            up_left = prev[i - channels] if i >= channels else 0
            if ftype == 1:
                line[i] = (line[i] + left) & 0xFF
            elif ftype == 2:
                line[i] = (line[i] + up) & 0xFF
            elif ftype == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif ftype == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else up_left
                line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line))
        prev = line
    return Image(width, height, channels, rows)
