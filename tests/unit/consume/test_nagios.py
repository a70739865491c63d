"""The mapping of a probe result to a Nagios external command, and the command file."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from msgbus.consume.nagios import CommandFile, NameRule, check_result_line, escape_output
from msgbus.errors import BridgeError, ConfigError, SchemaError
from msgbus.schema.models import ProbeResult


def _result(**fields: str) -> ProbeResult:
    values = {
        "serviceURI": "ce1.example.org:8443", "hostName": "ce1.example.org",
        "serviceFlavour": "CREAM-CE", "siteName": "MY-SITE", "metricStatus": "CRITICAL",
        "metricName": "org.sam.CREAMCE-JobSubmit", "summaryData": "job failed",
        "timestamp": "2026-12-05T10:00:00Z",
    }  # fmt: skip
    values.update(fields)
    return ProbeResult.model_validate(values)


@pytest.mark.parametrize(
    ("status", "code"), [("OK", 0), ("WARNING", 1), ("CRITICAL", 2), ("UNKNOWN", 3)]
)
def test_each_status_becomes_its_nagios_return_code(status: str, code: int) -> None:
    line = check_result_line(_result(metricStatus=status), NameRule())
    assert line == (
        "[1796464800] PROCESS_SERVICE_CHECK_RESULT;ce1.example.org;"
        f"org.sam.CREAMCE-JobSubmit;{code};job failed\n"
    )


def test_details_are_long_output_after_a_literal_backslash_n_on_one_line() -> None:
    result = _result(summaryData="2 of 3 failed", detailsData="a: ok\nb: C:\\tmp full\r\nc: x")
    line = check_result_line(result, NameRule())
    assert line.endswith(";2 of 3 failed\\na: ok\\nb: C:\\\\tmp full\\nc: x\n")
    assert line.count("\n") == 1  # the command file is read line by line


def test_escape_output_doubles_backslashes_before_it_escapes_newlines() -> None:
    # Nagios unescapes \\ to \ and \n to a newline: a literal "\n" in the text survives.
    assert escape_output("a\\nb\nc") == "a\\\\nb\\nc"


def test_templates_name_host_and_service_from_any_field() -> None:
    rule = NameRule(host="{siteName}", service="{serviceFlavour} {metricName}")
    line = check_result_line(_result(), rule)
    assert ";MY-SITE;CREAM-CE org.sam.CREAMCE-JobSubmit;2;" in line


@pytest.mark.parametrize("template", ["{nosuch}", "", "{hostName"])
def test_a_template_naming_no_field_is_refused_up_front(template: str) -> None:
    with pytest.raises(ConfigError, match="--service"):
        NameRule(service=template)


def test_a_name_with_a_semicolon_is_refused_not_sent_garbled() -> None:
    with pytest.raises(SchemaError, match="holds ';'"):
        check_result_line(_result(metricName="a;b"), NameRule())


def test_the_command_file_gets_whole_lines_appended(tmp_path: Path) -> None:
    path = tmp_path / "nagios.cmd"
    path.write_text("earlier\n")
    with CommandFile(path) as commands:
        commands.write(["one\n", "two\n"])
    assert path.read_text() == "earlier\none\ntwo\n"


def test_a_fifo_nobody_reads_is_an_error_not_a_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "nagios.cmd"
    os.mkfifo(fifo)
    with pytest.raises(BridgeError, match="Nagios is not reading it"):
        CommandFile(fifo)


def test_a_missing_command_file_says_nagios_is_not_running(tmp_path: Path) -> None:
    with pytest.raises(BridgeError, match="start Nagios with check_external_commands=1"):
        CommandFile(tmp_path / "absent.cmd")


def test_lines_written_to_a_read_fifo_arrive_whole(tmp_path: Path) -> None:
    fifo = tmp_path / "nagios.cmd"
    os.mkfifo(fifo)
    received: list[bytes] = []
    opened = threading.Event()

    def read() -> None:
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        opened.set()
        # Before the writer opens, a read finds no writer and returns b"" at once:
        # read until the writer has written and closed (or time runs out).
        chunks: list[bytes] = []
        deadline = time.monotonic() + 5
        try:
            while time.monotonic() < deadline:
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    data = None
                if data:
                    chunks.append(data)
                elif data == b"" and chunks:
                    break
                else:
                    time.sleep(0.01)
        finally:
            os.close(fd)
        received.append(b"".join(chunks))

    reader = threading.Thread(target=read)
    reader.start()
    opened.wait(5)
    with CommandFile(fifo) as commands:
        commands.write([check_result_line(_result(), NameRule())])
    reader.join(5)
    assert received == [
        b"[1796464800] PROCESS_SERVICE_CHECK_RESULT;ce1.example.org;"
        b"org.sam.CREAMCE-JobSubmit;2;job failed\n"
    ]
