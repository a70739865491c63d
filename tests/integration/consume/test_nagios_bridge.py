"""``msgbus nagios-bridge`` against a real Nagios (Debian's nagios4) run by the test.

Nagios runs in the foreground with a configuration of the test's own: one host and one
service that take only passive results, its command FIFO and status.dat in tmp_path,
status written every second. What the bridge submits must show up in status.dat.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from msgbus.broker import BrokerConfig
from msgbus.broker.server import BrokerThread
from msgbus.schema.models import ProbeResult
from msgbus.schema.wlcg import encode_wlcg
from tests.fixtures.pipeline import MsgbusProcess, run_msgbus, wait_until
from tests.fixtures.services import require_service

NAGIOS = "/usr/sbin/nagios4"
HOST, SERVICE = "ce1.example.org", "org.sam.CREAMCE-JobSubmit"

_OBJECTS = f"""
define command {{
    command_name msgbus-none
    command_line /bin/true
}}
define timeperiod {{
    timeperiod_name always
    alias always
    monday 00:00-24:00
    tuesday 00:00-24:00
    wednesday 00:00-24:00
    thursday 00:00-24:00
    friday 00:00-24:00
    saturday 00:00-24:00
    sunday 00:00-24:00
}}
define contact {{
    contact_name nobody
    host_notifications_enabled 0
    service_notifications_enabled 0
    host_notification_period always
    service_notification_period always
    host_notification_options n
    service_notification_options n
    host_notification_commands msgbus-none
    service_notification_commands msgbus-none
}}
define host {{
    host_name {HOST}
    address 127.0.0.1
    max_check_attempts 1
    check_period always
    active_checks_enabled 0
    passive_checks_enabled 1
    contacts nobody
    notification_period always
    notifications_enabled 0
}}
define service {{
    host_name {HOST}
    service_description {SERVICE}
    check_command msgbus-none
    max_check_attempts 1
    check_interval 5
    retry_interval 1
    check_period always
    active_checks_enabled 0
    passive_checks_enabled 1
    contacts nobody
    notification_period always
    notifications_enabled 0
}}
"""


class Nagios:
    """nagios4 in the foreground on a configuration in ``root``; stopped and started again
    as a site's Nagios is (each start makes a new command FIFO)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.main = _config(root)
        self.command_file = root / "nagios.cmd"
        self.status_file = root / "status.dat"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.status_file.unlink(missing_ok=True)
        with (self.root / "nagios.out").open("ab") as log:
            self.proc = subprocess.Popen([NAGIOS, str(self.main)], stdout=log, stderr=log)
        wait_until(
            lambda: self.command_file.is_fifo() and self.status_file.exists(),
            30,
            "Nagios' command FIFO",
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)

    def service(self, host: str, service: str) -> dict[str, str]:
        """The servicestatus block of ``host``/``service`` in status.dat ({} before any)."""
        text = self.status_file.read_text() if self.status_file.exists() else ""
        for block in text.split("servicestatus {")[1:]:
            fields = dict(
                line.strip().split("=", 1)
                for line in block.split("}")[0].splitlines()
                if "=" in line
            )
            if fields.get("host_name") == host and fields.get("service_description") == service:
                return fields
        return {}


def _config(root: Path) -> Path:
    (root / "objects.cfg").write_text(_OBJECTS)
    settings = {
        "log_file": root / "nagios.log", "cfg_file": root / "objects.cfg",
        "object_cache_file": root / "objects.cache",
        "precached_object_file": root / "objects.precache",
        "status_file": root / "status.dat", "status_update_interval": 1,
        "nagios_user": "root", "nagios_group": "root",  # the test runs as root (CI, container)
        "check_external_commands": 1, "command_file": root / "nagios.cmd",
        "lock_file": root / "nagios.lock", "temp_file": root / "nagios.tmp",
        "temp_path": root, "check_result_path": root, "check_result_reaper_frequency": 1,
        "retain_state_information": 0, "state_retention_file": root / "retention.dat",
        "use_syslog": 0, "allow_empty_hostgroup_assignment": 1, "log_passive_checks": 1,
    }  # fmt: skip
    main = root / "nagios.cfg"
    main.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
    return main


@pytest.fixture
def nagios(tmp_path: Path) -> Iterator[Nagios]:
    require_service(
        f"Nagios ({NAGIOS}, Debian package nagios4-core)", lambda: os.access(NAGIOS, os.X_OK)
    )
    # The configuration runs Nagios as root (nagios_user=root), as CI containers are.
    require_service("root, to run Nagios as nagios_user=root", lambda: os.geteuid() == 0)
    root = tmp_path / "nagios"
    root.mkdir()
    running = Nagios(root)
    try:
        running.start()
        yield running
    finally:
        running.stop()


@pytest.fixture
def broker_url() -> Iterator[str]:
    with BrokerThread(BrokerConfig(port=0)) as broker:
        yield broker.url


def _publish(
    tmp_path: Path, url: str, destination: str, status: str, summary: str = "job submission failed"
) -> None:
    result = ProbeResult.model_validate({
        "serviceURI": f"{HOST}:8443", "hostName": HOST, "serviceFlavour": "CREAM-CE",
        "siteName": "MY-SITE", "metricStatus": status, "metricName": SERVICE,
        "summaryData": summary, "detailsData": "CE said: queue closed\nretry later",
        "timestamp": "2026-12-05T10:00:00Z",
    })  # fmt: skip
    path = tmp_path / f"result-{uuid.uuid4().hex[:6]}.txt"
    path.write_text(encode_wlcg([result]))
    done = run_msgbus(
        ["publish", "--spool", str(tmp_path / "spool"), "--broker", url, "--destination",
         destination, "--type", "ProbeResult", "--format", "wlcg", str(path)]
    )  # fmt: skip
    assert done.returncode == 0, done.stdout


def test_a_critical_result_from_the_bus_shows_in_nagios(
    tmp_path: Path, nagios: Nagios, broker_url: str
) -> None:
    destination = f"/queue/probes.{uuid.uuid4().hex[:8]}"
    _publish(tmp_path, broker_url, destination, "CRITICAL")
    bridged = run_msgbus(
        ["nagios-bridge", "--broker", broker_url, "--destination", destination,
         "--command-file", str(nagios.command_file), "--count", "1", "--until", "60s"]
    )  # fmt: skip
    assert bridged.returncode == 0 and "submitted 1 check result" in bridged.stdout, bridged.stdout
    wait_until(
        lambda: nagios.service(HOST, SERVICE).get("current_state") == "2",
        30,
        "CRITICAL in status.dat",
    )
    status = nagios.service(HOST, SERVICE)
    assert status["plugin_output"] == "job submission failed"
    assert status["long_plugin_output"] == "CE said: queue closed\\nretry later"
    assert status["check_type"] == "1"  # passive
    assert status["last_check"] == "1796464800"  # the probe's time, not the bridge's


def test_a_result_nagios_did_not_take_is_not_acknowledged_and_comes_back(
    tmp_path: Path, nagios: Nagios, broker_url: str
) -> None:
    destination = f"/topic/probes.{uuid.uuid4().hex[:8]}"
    args = ["nagios-bridge", "--broker", broker_url, "--destination", destination,
            "--subscription", f"nagios-{uuid.uuid4().hex[:6]}",
            "--command-file", str(nagios.command_file), "--until", "60s"]  # fmt: skip
    bridge = MsgbusProcess(tmp_path / "bridge.log", args)
    bridge.wait_for_output("bridging ")
    _publish(tmp_path, broker_url, destination, "OK", "first")
    wait_until(lambda: nagios.service(HOST, SERVICE).get("plugin_output") == "first", 30, "first")
    nagios.stop()  # the bridge's next write finds no reader
    _publish(tmp_path, broker_url, destination, "CRITICAL", "second")
    assert bridge.proc.wait(30) == 1, bridge.output()
    assert "is Nagios still running?" in bridge.output()
    nagios.start()  # fresh state: only what the bridge submits from now on
    again = run_msgbus([*args, "--count", "1"])
    assert again.returncode == 0 and "submitted 1 check result" in again.stdout, again.stdout
    wait_until(lambda: nagios.service(HOST, SERVICE).get("current_state") == "2", 30, "second")
    assert nagios.service(HOST, SERVICE)["plugin_output"] == "second"


def test_what_is_not_a_probe_result_is_reported_and_not_submitted(
    tmp_path: Path, broker_url: str
) -> None:
    destination = f"/queue/probes.{uuid.uuid4().hex[:8]}"
    event = tmp_path / "event.json"
    event.write_text(
        '{"jobId": "j1", "state": "DONE", "owner": "/CN=Ann", "hostName": "ce1.example.org",'
        ' "siteName": "MY-SITE", "timestamp": "2026-12-05T10:00:00Z"}'
    )
    done = run_msgbus(
        ["publish", "--spool", str(tmp_path / "spool"), "--broker", broker_url, "--destination",
         destination, "--type", "JobStatusEvent", str(event)]
    )  # fmt: skip
    assert done.returncode == 0, done.stdout
    _publish(tmp_path, broker_url, destination, "WARNING", "disk 91% full")
    commands = tmp_path / "nagios.cmd"  # a plain file takes the lines as the FIFO would
    commands.touch()
    bridged = run_msgbus(
        ["nagios-bridge", "--broker", broker_url, "--destination", destination,
         "--command-file", str(commands), "--count", "1", "--until", "60s",
         "--host", "{siteName}", "--service", "{serviceFlavour}-{metricName}"]
    )  # fmt: skip
    assert bridged.returncode == 0, bridged.stdout
    assert "skipped" in bridged.stdout and "a JobStatusEvent" in bridged.stdout
    assert commands.read_text() == (
        f"[1796464800] PROCESS_SERVICE_CHECK_RESULT;MY-SITE;CREAM-CE-{SERVICE};1;"
        "disk 91% full\\nCE said: queue closed\\nretry later\n"
    )
