"""Probe results as Nagios/Icinga passive check results.

Each ProbeResult becomes one ``PROCESS_SERVICE_CHECK_RESULT`` external command. Nagios
reads its command file line by line, so nothing in a line may be a real newline: the
long output (detailsData) follows the summary after a literal ``\\n``, which Nagios turns
back into a newline (and ``\\\\`` into a backslash) when it stores the result.
"""

from __future__ import annotations

import errno
import os
import string
from pathlib import Path
from types import TracebackType

from msgbus.errors import BridgeError, ConfigError, SchemaError
from msgbus.schema.models import ProbeResult
from msgbus.schema.status import MetricStatus

__all__ = ["CommandFile", "NameRule", "check_result_line", "escape_output"]

DEFAULT_COMMAND_FILE = Path("/var/lib/nagios4/rw/nagios.cmd")

RETURN_CODES = {
    MetricStatus.OK: 0,
    MetricStatus.WARNING: 1,
    MetricStatus.CRITICAL: 2,
    MetricStatus.UNKNOWN: 3,
}


def escape_output(text: str) -> str:
    """``text`` on one line as Nagios unescapes it: backslash first, then newlines."""
    return text.replace("\\", "\\\\").replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")


class NameRule:
    """Templates naming the Nagios host and service of a result from its fields
    (``{hostName}``, ``{metricName}``, ``{siteName}``...)."""

    def __init__(self, host: str = "{hostName}", service: str = "{metricName}") -> None:
        fields = set(ProbeResult.model_fields)
        for option, template in (("--host", host), ("--service", service)):
            try:
                names = [name for _, name, _, _ in string.Formatter().parse(template) if name]
            except ValueError as exc:
                raise ConfigError(f"{option} {template!r} is not a template: {exc}") from exc
            unknown = sorted(set(names) - fields)
            if unknown or not template.strip():
                raise ConfigError(
                    f"{option} {template!r}: {', '.join(unknown) or 'empty'} is not a "
                    "ProbeResult field; use fields like {hostName}, {metricName}, "
                    "{siteName}, {serviceFlavour}"
                )
        self.host = host
        self.service = service

    def names(self, result: ProbeResult) -> tuple[str, str]:
        """(host, service) of ``result``; a name Nagios could not parse is refused."""
        values = {
            key: "" if value is None else str(value)
            for key, value in result.model_dump(mode="json").items()
        }
        names = (self.host.format_map(values), self.service.format_map(values))
        for kind, name in zip(("host", "service"), names, strict=True):
            if not name.strip() or any(c in name for c in ";\n\r"):
                raise SchemaError(
                    f"Nagios {kind} name {name!r} of {result.hostName}/{result.metricName} is "
                    "empty or holds ';' or a newline; change --host/--service so it does not"
                )
        return names


def check_result_line(result: ProbeResult, rule: NameRule) -> str:
    """The external command submitting ``result``, newline-terminated; its time is the
    probe's, so Nagios shows when the check ran, not when it crossed the bus."""
    host, service = rule.names(result)
    output = result.summaryData
    if result.detailsData:
        output += "\n" + result.detailsData
    when = int(result.timestamp.timestamp())
    code = RETURN_CODES[result.metricStatus]
    return (
        f"[{when}] PROCESS_SERVICE_CHECK_RESULT;{host};{service};{code};{escape_output(output)}\n"
    )


class CommandFile:
    """Nagios' external command file (a FIFO while Nagios runs), written a line at a time.

    Unbuffered: once :meth:`write` returns the line is in the FIFO (or the file), which is
    what the caller waits for before it acknowledges the message.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            # Non-blocking open: a FIFO nobody reads fails now (ENXIO) instead of hanging.
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK)
        except OSError as exc:
            hint = (
                "Nagios is not reading it: start Nagios with check_external_commands=1"
                if exc.errno in (errno.ENXIO, errno.ENOENT)
                else "check its permissions (the bridge must be in Nagios' command group)"
            )
            raise BridgeError(
                f"cannot open Nagios command file {path}: {exc.strerror}; {hint}"
            ) from exc
        # Writes block again, so a full FIFO slows the bridge down instead of failing it.
        os.set_blocking(self._fd, True)

    def write(self, lines: list[str]) -> None:
        """Append ``lines`` whole. A FIFO write of at most PIPE_BUF bytes is atomic, so
        one line at a time keeps them from interleaving with other writers' commands."""
        for line in lines:
            data = line.encode("utf-8")
            try:
                while data:
                    data = data[os.write(self._fd, data) :]
            except OSError as exc:
                raise BridgeError(
                    f"writing to Nagios command file {self.path} failed: {exc.strerror}; "
                    "is Nagios still running? the message stays unacknowledged"
                ) from exc

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> CommandFile:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
