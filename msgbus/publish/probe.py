"""Running a Nagios plugin and turning its result into a ProbeResult."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from msgbus.errors import ConfigError, DecodeError
from msgbus.schema import (
    MetricStatus,
    ProbeResult,
    parse_perfdata,
    parse_plugin_output,
    status_from_exit_code,
)

__all__ = ["PluginRun", "ProbeTarget", "probe_result", "run_plugin"]

_MAX_OUTPUT = 1 << 20  # the plugin API caps output far below this; keep memory bounded


@dataclass(frozen=True, slots=True)
class PluginRun:
    status: MetricStatus
    output: str
    exit_code: int | None
    """None when the plugin was killed after its timeout."""


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    """What a probe result is about (the ProbeResult fields not from the plugin)."""

    metric: str
    host: str
    site: str
    service_flavour: str
    service_uri: str | None = None


def run_plugin(command: Sequence[str], timeout: float) -> PluginRun:
    """Run a plugin; a timeout, a crash or an exit code above 3 give UNKNOWN."""
    try:
        proc = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so a timeout kills the plugin's children too
        )
    except OSError as exc:
        raise ConfigError(
            f"cannot run plugin {command[0]!r}: {exc.strerror or exc}; check the path and "
            "that it is executable"
        ) from None
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return PluginRun(
            MetricStatus.UNKNOWN, f"UNKNOWN: plugin timed out after {timeout:g} s", None
        )
    text = out[:_MAX_OUTPUT].decode("utf-8", "replace")
    code = proc.returncode
    if code < 0:
        text = f"UNKNOWN: plugin killed by signal {-code}\n{text}"
    return PluginRun(status_from_exit_code(code), text, code)


def probe_result(run: PluginRun, target: ProbeTarget) -> ProbeResult:
    """The ProbeResult for a plugin run: summary, details and performance data.

    Performance data that does not parse is moved into the details (with the reason)
    rather than losing the result.
    """
    parsed = parse_plugin_output(run.output)
    details, perfdata = parsed.details, parsed.perfdata
    if perfdata:
        try:
            parse_perfdata(perfdata)
        except DecodeError as exc:
            details = "\n".join(
                p for p in (details, f"(unparsable performance data: {exc}) {perfdata}") if p
            )
            perfdata = ""
    return ProbeResult.model_validate(
        {
            "serviceURI": target.service_uri or target.host,
            "hostName": target.host,
            "serviceFlavour": target.service_flavour,
            "siteName": target.site,
            "metricStatus": run.status,
            "metricName": target.metric,
            "summaryData": parsed.summary,
            "detailsData": details or None,
            "performanceData": perfdata or None,
            "timestamp": datetime.now(timezone.utc),
            "gatheredAt": socket.getfqdn(),
        }
    )


def default_metric(command: Sequence[str]) -> str:
    """The metric name for a command: its program name (``check_load``)."""
    return Path(command[0]).name
