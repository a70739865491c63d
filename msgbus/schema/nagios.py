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
from typing import NamedTuple, NoReturn

from msgbus.errors import DecodeError
from msgbus.schema.status import MetricStatus

__all__ = [
    "NO_OUTPUT",
    "PerfDatum",
    "PluginOutput",
    "parse_perfdata",
    "parse_plugin_output",
    "perfdata_items",
    "status_from_exit_code",
]

NO_OUTPUT = "(No output returned from plugin)"
"""Summary used when a plugin printed nothing, as Nagios itself reports it."""

# ASCII digits only: float() would also take other scripts' digits.
_NUM = r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
_VALUE = rf"(?P<num>{_NUM}|U)(?P<uom>[^0-9 \t\n;.,+\-][^ \t\n;]*)?"
# A threshold range: [@][start:][end], start may be ~ (negative infinity).
_RANGE = rf"@?(?:(?:{_NUM}|~)?:)?(?:{_NUM})?"
_ITEM_RE = re.compile(
    r"(?:'(?P<quoted>(?:[^']|'')+)'|(?P<bare>[^'= \t\n][^= \t\n]*))="
    + _VALUE
    + rf"(?:;(?P<warn>{_RANGE})(?:;(?P<crit>{_RANGE})"
    + rf"(?:;(?P<min>{_NUM})?(?:;(?P<max>{_NUM})?)?)?)?)?"
    + r"(?=[ \t\n]|\Z)"
)
# Pieces of the item grammar, used only to explain why an item did not match.
_VALUE_RE = re.compile(_VALUE)
_NUM_RE = re.compile(_NUM)
_RANGE_RE = re.compile(_RANGE)
_QUOTED_LABEL_RE = re.compile(r"'((?:[^']|'')*)'")
_BLANKS_RE = re.compile(r"[ \t\n]*")
_BARE_LABEL_RE = re.compile(r"[^= \t\n]*")
_ITEM_SPEC_RE = re.compile(r"[^ \t\n]*")

_FIELD = "performanceData"


class PerfDatum(NamedTuple):
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


def _scan(regex: re.Pattern[str], text: str, pos: int) -> int:
    """Where the run of ``regex`` (which matches empty too) starting at ``pos`` ends."""
    m = regex.match(text, pos)
    return m.end() if m else pos


def _explain_label(text: str, pos: int) -> tuple[str, int]:
    """Return the label at ``pos`` and the index of its ``=``, or raise why not."""
    if text[pos] == "'":
        m = _QUOTED_LABEL_RE.match(text, pos)
        if m is None:
            raise _bad(f"unterminated quoted label at character {pos + 1}; close it with '")
        label, eq = m.group(1).replace("''", "'"), m.end()
    else:
        eq = _scan(_BARE_LABEL_RE, text, pos)
        label = text[pos:eq]
    if not text.startswith("=", eq):
        raise _bad(f"expected label=value, got {text[pos : eq + 1]!r} at character {pos + 1}")
    if not label:
        raise _bad(f"empty label at character {pos + 1}")
    return label, eq


def _explain(text: str, pos: int) -> NoReturn:
    """Raise a DecodeError saying why the item at ``pos`` is not performance data."""
    label, eq = _explain_label(text, pos)
    spec = text[eq + 1 : _scan(_ITEM_SPEC_RE, text, eq + 1)]
    parts = spec.split(";")
    if len(parts) > 5:
        raise _bad(
            f"{label!r} has {len(parts)} ';'-fields, expected at most 5 "
            "(value[UOM];warn;crit;min;max)"
        )
    value, warn, crit, lo, hi = parts + [""] * (5 - len(parts))
    if not _VALUE_RE.fullmatch(value):
        raise _bad(f"value of {label!r} must be a number with optional unit or U, got {value!r}")
    for what, rng in (("warn", warn), ("crit", crit)):
        if not _RANGE_RE.fullmatch(rng):
            raise _bad(
                f"{what} threshold of {label!r} must be a range [@][start:][end], got {rng!r}"
            )
    for what, num in (("min", lo), ("max", hi)):
        if num and not _NUM_RE.fullmatch(num):
            raise _bad(f"{what} of {label!r} must be a number, got {num!r}")
    raise _bad(f"cannot read performance data item {text[pos:eq]!r} at character {pos + 1}")


def _datum(m: re.Match[str]) -> PerfDatum:
    quoted, num, lo, hi = m.group("quoted", "num", "min", "max")
    return PerfDatum(
        label=m.group("bare") if quoted is None else quoted.replace("''", "'"),
        value=None if num == "U" else float(num),
        uom=m.group("uom") or "",
        warn=m.group("warn") or "",
        crit=m.group("crit") or "",
        min=float(lo) if lo else None,
        max=float(hi) if hi else None,
    )


def _items(text: str) -> list[re.Match[str]]:
    items: list[re.Match[str]] = []
    pos = _scan(_BLANKS_RE, text, 0)
    while pos < len(text):
        m = _ITEM_RE.match(text, pos)
        if m is None:
            _explain(text, pos)
        items.append(m)
        pos = _scan(_BLANKS_RE, text, m.end())
    return items


def parse_perfdata(text: str) -> list[PerfDatum]:
    """Parse Nagios performance data; raise DecodeError naming the bad item."""
    return [_datum(m) for m in _items(text)]


def perfdata_items(text: str) -> list[str]:
    """The items of performance data as written (``'label'=value;warn;...``), one string
    each, as Icinga 2's API takes them; raise DecodeError naming the bad item."""
    return [m.group(0) for m in _items(text)]


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
