"""`msgbus watch --job ID` prints exactly that job's state changes, live, on the embedded
broker and ActiveMQ; a durable watch keeps what arrived while it was away."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.fixtures.pipeline import MsgbusProcess, run_msgbus


@pytest.fixture
def url(embedded_or_activemq: str) -> str:
    return embedded_or_activemq


def _event(job: str, state: str, previous: str | None, owner: str) -> dict[str, object]:
    return {
        "jobId": job, "state": state, "previousState": previous, "owner": owner,
        "timestamp": "2026-12-05T10:00:00Z", "hostName": "ce1.example.org",
        "siteName": "MY-SITE", "voName": "atlas",
    }  # fmt: skip


def _publish(tmp_path: Path, url: str, destination: str, events: list[dict[str, object]]) -> None:
    path = tmp_path / f"events-{uuid.uuid4().hex[:6]}.json"
    path.write_text("\n".join(json.dumps(e) for e in events))
    done = run_msgbus(
        ["publish", "--spool", str(tmp_path / "spool"), "--broker", url, "--destination",
         destination, "--type", "JobStatusEvent", "--format", "json", str(path)]
    )  # fmt: skip
    assert done.returncode == 0, done.stdout


def _changes(output: str) -> list[tuple[str, str]]:
    events = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return [(e["jobId"], e["state"]) for e in events]


def test_watch_a_job_prints_exactly_its_changes_live(tmp_path: Path, url: str) -> None:
    destination = f"/topic/jobs.{uuid.uuid4().hex[:8]}"
    job = "https://lb.example.org:9000/j1"
    watcher = MsgbusProcess(
        tmp_path / "watch.log",
        ["watch", "--broker", url, "--destination", destination, "--job", job,
         "--count", "3", "--until", "60s", "--json"],
    )  # fmt: skip
    watcher.wait_for_output("watching ")
    ann, bob = "/DC=org/CN=Ann O'Neil", "/DC=org/CN=Bob"
    _publish(tmp_path, url, destination, [
        _event(job, "SCHEDULED", "SUBMITTED", ann),
        _event("https://lb.example.org:9000/j2", "SCHEDULED", "SUBMITTED", bob),
        _event(job, "RUNNING", "SCHEDULED", ann),
        _event("https://lb.example.org:9000/j2", "RUNNING", "SCHEDULED", bob),
        _event(job, "DONE", "RUNNING", ann),
    ])  # fmt: skip
    assert watcher.proc.wait(30) == 0, watcher.output()
    assert _changes(watcher.output()) == [(job, "SCHEDULED"), (job, "RUNNING"), (job, "DONE")]


def test_a_durable_watch_by_owner_keeps_what_came_while_away(tmp_path: Path, url: str) -> None:
    destination = f"/topic/jobs.{uuid.uuid4().hex[:8]}"
    owner = "/DC=org/CN=Ann O'Neil"
    args = ["watch", "--broker", url, "--destination", destination, "--owner", owner,
            "--durable", f"ann-{uuid.uuid4().hex[:6]}", "--json"]  # fmt: skip
    first = run_msgbus([*args, "--until", "2s"])  # registers, expires: removed again
    assert first.returncode == 0 and "expired and was removed" in first.stdout, first.stdout
    registered = MsgbusProcess(tmp_path / "reg.log", [*args, "--count", "1", "--until", "30s"])
    registered.wait_for_output("watching ")
    registered.proc.terminate()  # away: the registration stays with the broker
    registered.proc.wait(10)
    _publish(tmp_path, url, destination, [
        _event("j9", "RUNNING", "SCHEDULED", "/DC=org/CN=Bob"),
        _event("j8", "DONE", "RUNNING", owner),
    ])  # fmt: skip
    back = run_msgbus([*args, "--count", "1", "--until", "30s"])
    assert back.returncode == 0, back.stdout
    assert _changes(back.stdout) == [("j8", "DONE")]
