"""The one reconnect policy: back-off between attempts, reset only after a healthy
connection, waits counted from the last attempt (a connection that lasted longer is
tried again at once), one log line per change, never a tight loop."""

from __future__ import annotations

import logging
import random
import threading

import pytest

from msgbus.config import ConnectionConfig
from msgbus.errors import BrokerError, ConnectError
from msgbus.transport.reconnect import Reconnect


class RecordingStop(threading.Event):
    """A stop event whose waits are recorded instead of slept."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        assert timeout is not None
        self.waits.append(timeout)
        return self.is_set()


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def _down(policy: Reconnect, error: BaseException) -> bool:
    """A failure, then the wait for the next attempt (what a retry loop does)."""
    policy.failed(error)
    return policy.wait()


def _policy(**kw: object) -> tuple[Reconnect, RecordingStop, Clock]:
    settings = ConnectionConfig(reconnect_initial_delay=1.0, reconnect_max_delay=8.0)
    stop, clock = RecordingStop(), Clock()
    policy = Reconnect("test", settings, stop, rng=random.Random(1), clock=clock, **kw)  # type: ignore[arg-type]
    return policy, stop, clock


def test_failures_wait_longer_up_to_the_cap_and_log_once(caplog: pytest.LogCaptureFixture) -> None:
    policy, stop, _ = _policy()
    with caplog.at_level(logging.INFO, "msgbus"):
        for _ in range(8):
            assert _down(policy, ConnectError("refused"))
    assert all(1.0 <= w <= 8.0 for w in stop.waits)
    assert max(stop.waits[4:]) > 4.0  # grew
    assert [r.getMessage().split(";")[0] for r in caplog.records] == ["test failed: refused"]
    _down(policy, ConnectError("timed out"))
    assert caplog.records[-1].getMessage().startswith("test failed: timed out")


def test_a_connection_refused_right_after_login_does_not_reset_the_back_off(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The reconnect storm: login accepted, subscription refused, again and again."""
    policy, stop, clock = _policy()
    with caplog.at_level(logging.WARNING, "msgbus"):
        for _ in range(8):
            policy.up()
            clock.now += 0.01
            _down(policy, BrokerError("not authorized to read msgbus.control.x"))
    assert min(stop.waits[3:]) >= 1.0 and max(stop.waits[3:]) > 4.0
    assert sum(stop.waits) > 20  # eight attempts took over 20 s, not milliseconds


def test_a_healthy_connection_starts_the_back_off_over() -> None:
    policy, stop, clock = _policy()
    for _ in range(6):
        _down(policy, ConnectError("refused"))
    policy.up()
    clock.now += 8.0  # up for as long as the longest wait
    waited = len(stop.waits)
    _down(policy, ConnectError("lost"))
    assert policy.delay == 0.0 and len(stop.waits) == waited  # once at once
    _down(policy, ConnectError("refused"))
    assert stop.waits[-1] <= 2.0  # then from the start of the back-off (its second step)


def test_reconnects_are_counted_after_the_first_connection() -> None:
    counted: list[int] = []
    policy, _, _ = _policy(on_reconnect=lambda: counted.append(1))
    policy.up()
    _down(policy, ConnectError("lost"))
    policy.up()
    assert counted == [1] and policy.connected and policy.delay == 0.0


def test_down_returns_false_once_stopped() -> None:
    policy, stop, _ = _policy()
    stop.set()
    assert _down(policy, ConnectError("refused")) is False


def test_a_deadline_before_the_next_attempt_returns_at_once() -> None:
    """The publisher's way: try until ``retry_for`` runs out, never wait past it."""
    policy, stop, clock = _policy()
    delay = policy.failed(ConnectError("refused"))
    assert policy.wait(until=clock.now + delay / 2) is False
    assert stop.waits == []
    assert policy.wait(until=clock.now + delay + 1) is True
    assert stop.waits == [delay]


def test_the_back_off_outlives_the_call_that_failed() -> None:
    """A later call waits out what is left of the wait, instead of trying at once."""
    policy, stop, clock = _policy()
    delay = policy.failed(ConnectError("refused"))
    clock.now += delay / 4
    assert policy.wait() is True
    assert stop.waits == [pytest.approx(delay * 3 / 4)]
    clock.now += delay  # past it: no wait at all
    assert policy.wait() is True and len(stop.waits) == 1


def test_failures_are_logged_at_the_level_asked_for(caplog: pytest.LogCaptureFixture) -> None:
    policy, _, _ = _policy(level=logging.INFO)
    with caplog.at_level(logging.INFO, "msgbus"):
        policy.failed(ConnectError("refused"))
    assert [r.levelno for r in caplog.records] == [logging.INFO]
