"""A bounded in-memory log handler: the last N lines, for the ``logs`` command."""

from __future__ import annotations

import collections
import logging
import threading

__all__ = ["LogBuffer"]

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class LogBuffer(logging.Handler):
    """Keeps the last ``capacity`` formatted records; older ones fall off."""

    def __init__(self, capacity: int, level: int = logging.INFO) -> None:
        super().__init__(level)
        self._lines: collections.deque[str] = collections.deque(maxlen=capacity)
        self._guard = threading.Lock()
        self.setFormatter(logging.Formatter(_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # logging must never raise into the caller
            self.handleError(record)
            return
        with self._guard:
            self._lines.append(line)
        # Being a handler hides logging's last-resort stderr output when nothing else
        # is configured; keep warnings visible as they were before we were attached.
        last = logging.lastResort
        if last is not None and not logging.getLogger().handlers and record.levelno >= last.level:
            last.handle(record)

    def lines(self, n: int | None = None) -> list[str]:
        """The last ``n`` lines (all kept lines when ``n`` is None), oldest first."""
        with self._guard:
            kept = list(self._lines)
        return kept if n is None else kept[-n:] if n > 0 else []
