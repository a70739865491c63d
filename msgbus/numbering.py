"""Which numbers of a producer's sequence are missing: the ledger's arithmetic, pure
(no imports: the publisher uses it too, and must not load the store's SQLAlchemy).

A producer numbers its messages 1, 2, 3, ... (per epoch). The consumer records each
number it stores; a number above the highest seen opens a gap for the ones skipped
over, a late one (failover, a network, a redelivery) closes or splits its gap, and a
repeat changes nothing. The last message of a producer's run announces the end of the
run and names the numbers it gave up on itself (refused by a broker, or neither
delivered nor spooled): those are skipped, reported to the user who published them, not
missing in transit. Ranges travel in a header as text (:func:`format_ranges`).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["Numbering", "Range", "coalesce", "format_ranges", "merge_ranges", "parse_ranges"]

Range = tuple[int, int]
"""First and last number, both included."""


@dataclass(slots=True)
class Numbering:
    high: int = 0
    """The highest number seen or announced."""
    gaps: list[Range] = field(default_factory=list)
    """Missing numbers below ``high``: sorted, disjoint, never adjacent."""
    skipped: int = 0
    """Numbers the producer announced it gave up on."""

    @property
    def missing(self) -> int:
        return sum(last - first + 1 for first, last in self.gaps)

    def record(self, numbers: Iterable[int]) -> int:
        """Note numbers that arrived; returns how many were new (not repeats)."""
        new = 0
        for n in sorted(set(numbers)):
            if n > self.high:
                if n > self.high + 1:
                    self.gaps.append((self.high + 1, n - 1))
                self.high = n
                new += 1
            elif n > 0:
                new += self._remove(n, n)
        return new

    def announce(self, last: int, skipped: Iterable[Range] = ()) -> None:
        """The end of a run: the producer sent up to ``last`` and gave up on ``skipped``."""
        if last > self.high:
            self.gaps.append((self.high + 1, last))
            self.high = last
        for first, end in skipped:
            self.skipped += self._remove(first, min(end, self.high))

    def _remove(self, first: int, last: int) -> int:
        """Take [first, last] out of the gaps; returns how many numbers were missing."""
        if first > last:
            return 0
        taken = 0
        i = bisect.bisect_right(self.gaps, (first, last)) - 1
        i = max(i, 0)
        while i < len(self.gaps) and self.gaps[i][0] <= last:
            lo, hi = self.gaps[i]
            if hi < first:
                i += 1
                continue
            taken += min(hi, last) - max(lo, first) + 1
            pieces = [(lo, first - 1)] if lo < first else []
            if hi > last:
                pieces.append((last + 1, hi))
            self.gaps[i : i + 1] = pieces
            i += len(pieces)
        return taken


def merge_ranges(numbers: Iterable[int]) -> list[Range]:
    """Numbers as the fewest ranges: ``[1, 2, 3, 7]`` -> ``[(1, 3), (7, 7)]``."""
    return coalesce((n, n) for n in numbers)


def coalesce(ranges: Iterable[Range]) -> list[Range]:
    """Ranges as the fewest sorted, disjoint ones: ``(1, 2), (3, 5), (4, 9)`` -> ``(1, 9)``."""
    out: list[Range] = []
    for first, last in sorted(ranges):
        if out and first <= out[-1][1] + 1:
            if last > out[-1][1]:
                out[-1] = (out[-1][0], last)
        else:
            out.append((first, last))
    return out


def format_ranges(ranges: Iterable[Range]) -> str:
    """Ranges as header text: ``[(12, 12), (40, 45)]`` -> ``"12,40-45"``."""
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)


def parse_ranges(text: str) -> list[Range] | None:
    """The ranges of :func:`format_ranges` text; None when it is not such text."""
    out: list[Range] = []
    for part in text.split(",") if text else ():
        first, dash, last = part.partition("-")
        if not part.isascii() or not first.isdigit() or (dash and not last.isdigit()):
            return None
        a, b = int(first), int(last) if dash else int(first)
        if not 0 < a <= b:
            return None
        out.append((a, b))
    return out
