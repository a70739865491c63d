"""The Nagios plugin API: output splitting, exit codes, performance data."""

from __future__ import annotations

import pytest

from msgbus.errors import DecodeError
from msgbus.schema import (
    NO_OUTPUT,
    MetricStatus,
    PerfDatum,
    PluginOutput,
    parse_perfdata,
    parse_plugin_output,
    status_from_exit_code,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("OK - fine\n", PluginOutput("OK - fine", "", "")),
        ("OK - fine | t=1s;2;3", PluginOutput("OK - fine", "", "t=1s;2;3")),
        (
            "DISK OK | /=2643MB;5948;5958;0;5968\n/ 15272 MB (77%);\n/boot 68 MB (69%);\n"
            "/home 69357 MB (27%); | /boot=68MB;88;93;0;98\n/home=69357MB;253404;253409;0;253414\n",
            PluginOutput(
                "DISK OK",
                "/ 15272 MB (77%);\n/boot 68 MB (69%);\n/home 69357 MB (27%);",
                "/=2643MB;5948;5958;0;5968 /boot=68MB;88;93;0;98 "
                "/home=69357MB;253404;253409;0;253414",
            ),
        ),
        (
            "WARNING\r\nline one\r\n  indented\r\n",
            PluginOutput("WARNING", "line one\n  indented", ""),
        ),
        ("CRITICAL\nlong text | a=1\n", PluginOutput("CRITICAL", "long text", "a=1")),
        ("", PluginOutput(NO_OUTPUT, "", "")),
        ("   | a=1\n", PluginOutput(NO_OUTPUT, "", "a=1")),
    ],
)
def test_parse_plugin_output(text: str, expected: PluginOutput) -> None:
    assert parse_plugin_output(text) == expected


def test_plugin_perfdata_parses() -> None:
    out = parse_plugin_output("OK | 'a b'=1;2 c=3%\nmore | d=U")
    assert [p.label for p in parse_perfdata(out.perfdata)] == ["a b", "c", "d"]


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (0, "OK"),
        (1, "WARNING"),
        (2, "CRITICAL"),
        (3, "UNKNOWN"),
        (4, "UNKNOWN"),
        (-1, "UNKNOWN"),
        (127, "UNKNOWN"),
        (255, "UNKNOWN"),
    ],
)
def test_status_from_exit_code(code: int, status: str) -> None:
    assert status_from_exit_code(code) is MetricStatus(status)


def test_perfdata_forms() -> None:
    assert parse_perfdata("  'it''s = x'=1.5e3KB;@10:20;~:30;-1;.5\tload=U ") == [
        PerfDatum("it's = x", 1500.0, "KB", "@10:20", "~:30", -1.0, 0.5),
        PerfDatum("load", None),
    ]
    assert parse_perfdata("") == []
    assert parse_perfdata("rta=0.08ms;;;0") == [PerfDatum("rta", 0.08, "ms", "", "", 0.0, None)]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("'open=1", "unterminated quoted label"),
        ("novalue", "expected label=value, got 'novalue'"),
        ("a b=1", "expected label=value, got 'a '"),
        ("=1", "empty label"),
        ("''=1", "empty label"),
        ("a=", "value of 'a' must be a number"),
        ("a=1,5", "value of 'a' must be a number"),
        ("a=1;2;3;4;5;6", "6 ';'-fields, expected at most 5"),
        ("a=1;x", "warn threshold of 'a' must be a range"),
        ("a=1;;1:2:3", "crit threshold"),
        ("a=1;;;low", "min of 'a' must be a number"),
        ("a=1;;;;high", "max of 'a' must be a number"),
        ("'a'b=1", "expected label=value"),
    ],
)
def test_bad_perfdata(text: str, match: str) -> None:
    with pytest.raises(DecodeError, match=match) as info:
        parse_perfdata(text)
    assert info.value.field == "performanceData"
