"""The Nagios plugin API: plugin output, performance data and exit codes.

Plugin output (Nagios plugin guidelines)::

    SUMMARY | PERFDATA
    LONG TEXT LINE 1
    LONG TEXT LINE N | PERFDATA LINE 2
    PERFDATA LINE 3

Performance data is a space-separated list of
``'label'=value[UOM];[warn];[crit];[min];[max]``; a label holding spaces or ``=`` is
single-quoted, a quote inside it doubled (``'it''s'``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from msgbus.errors import DecodeError
from msgbus.schema.status import MetricStatus

__all__ = [
    "NO_OUTPUT",
    "PerfDatum",
    "PluginOutput",
    "parse_perfdata",
    "parse_plugin_output",
    "status_from_exit_code",
]

NO_OUTPUT = "(No output returned from plugin)"
"""Summary used when a plugin printed nothing, as Nagios itself reports it."""

_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_VALUE_RE = re.compile(rf"(?P<num>{_NUM}|U)(?P<uom>[^\d\s;.,+\-][^\s;]*)?")
_NUM_RE = re.compile(_NUM)
_QUOTED_LABEL_RE = re.compile(r"'((?:[^']|'')*)'")
# A threshold range: [@][start:][end], start may be ~ (negative infinity).
_RANGE_RE = re.compile(rf"@?(?:(?:{_NUM}|~)?:)?(?:{_NUM})?")

_FIELD = "performanceData"


@dataclass(frozen=True, slots=True)
class PerfDatum:
    """One performance-data item; ``value`` is None for ``U`` (undetermined)."""

    label: str
    value: float | None
    uom: str = ""
    warn: str = ""
    crit: str = ""
    min: float | None = None
    max: float | None = None


class PluginOutput(NamedTuple):
    """A plugin's output split per the plugin API; ``perfdata`` is the raw text."""

    summary: str
    details: str
    perfdata: str


def _bad(reason: str) -> DecodeError:
    return DecodeError(reason, field=_FIELD)


def _read_label(text: str, pos: int) -> tuple[str, int]:
    """Return the label starting at ``pos`` and the index of the ``=`` after it."""
    if text[pos] == "'":
        m = _QUOTED_LABEL_RE.match(text, pos)
        if m is None:
            raise _bad(f"unterminated quoted label at character {pos + 1}; close it with '")
        label, eq = m.group(1).replace("''", "'"), m.end()
    else:
        eq = pos
        while eq < len(text) and text[eq] != "=" and not text[eq].isspace():
            eq += 1
        label = text[pos:eq]
    if not text.startswith("=", eq):
        raise _bad(f"expected label=value, got {text[pos : eq + 1]!r} at character {pos + 1}")
    if not label:
        raise _bad(f"empty label at character {pos + 1}")
    return label, eq


def _number(raw: str, what: str, label: str) -> float | None:
    if raw == "":
        return None
    if not _NUM_RE.fullmatch(raw):
        raise _bad(f"{what} of {label!r} must be a number, got {raw!r}")
    return float(raw)


def _datum(label: str, spec: str) -> PerfDatum:
    parts = spec.split(";")
    if len(parts) > 5:
        raise _bad(
            f"{label!r} has {len(parts)} ';'-fields, expected at most 5 "
            "(value[UOM];warn;crit;min;max)"
        )
    parts += [""] * (5 - len(parts))
    value, warn, crit, lo, hi = parts
    m = _VALUE_RE.fullmatch(value)
    if m is None:
        raise _bad(f"value of {label!r} must be a number with optional unit or U, got {value!r}")
    for what, rng in (("warn", warn), ("crit", crit)):
        if not _RANGE_RE.fullmatch(rng):
            raise _bad(
                f"{what} threshold of {label!r} must be a range [@][start:][end], got {rng!r}"
            )
    num = m.group("num")
    return PerfDatum(
        label=label,
        value=None if num == "U" else float(num),
        uom=m.group("uom") or "",
        warn=warn,
        crit=crit,
        min=_number(lo, "min", label),
        max=_number(hi, "max", label),
    )


def parse_perfdata(text: str) -> list[PerfDatum]:
    """Parse Nagios performance data; raise DecodeError naming the bad item."""
    items: list[PerfDatum] = []
    pos, n = 0, len(text)
    while True:
        while pos < n and text[pos] in " \t\n":
            pos += 1
        if pos >= n:
            return items
        label, eq = _read_label(text, pos)
        end = eq + 1
        while end < n and text[end] not in " \t\n":
            end += 1
        items.append(_datum(label, text[eq + 1 : end]))
        pos = end


def parse_plugin_output(text: str) -> PluginOutput:
    """Split plugin output into summary, details (long text) and raw perfdata."""
    lines = text.replace("\r\n", "\n").rstrip("\n").split("\n")
    summary, _, perf = lines[0].partition("|")
    perf_parts = [perf.strip()]
    details: list[str] = []
    in_perf = False
    for line in lines[1:]:
        if in_perf:
            perf_parts.append(line.strip())
            continue
        text_part, bar, more = line.partition("|")
        details.append(text_part.rstrip() if bar else text_part)
        if bar:
            perf_parts.append(more.strip())
            in_perf = True
    return PluginOutput(
        summary=summary.strip() or NO_OUTPUT,
        details="\n".join(details),
        perfdata=" ".join(p for p in perf_parts if p),
    )


_EXIT_STATUS = {
    0: MetricStatus.OK,
    1: MetricStatus.WARNING,
    2: MetricStatus.CRITICAL,
    3: MetricStatus.UNKNOWN,
}


def status_from_exit_code(code: int) -> MetricStatus:
    """Map a plugin exit code to its status; any code but 0-3 is UNKNOWN."""
    return _EXIT_STATUS.get(code, MetricStatus.UNKNOWN)
