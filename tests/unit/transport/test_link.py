"""The managed link on fake connections and a fake clock: failover order, back-off (no
tight loop), every subscription made again after a reconnect, one log line per change
of state, the metrics, and the two ways of use (``run`` and ``connection``)."""

from __future__ import annotations

import itertools
import logging
import random
import threading

import pytest

from msgbus.config import ConnectionConfig
from msgbus.errors import (
    AuthenticationError,
    BrokerError,
    ConnectError,
    ConnectionLost,
)
from msgbus.metrics import MetricsRegistry
from msgbus.transport.link import Link, LinkMetrics
from msgbus.transport.url import BrokerURL

BROKERS = ["stomp://mq1:61613", "stomp://mq2:61613", "stomp://mq3:61613"]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Stop(threading.Event):
    """A stop event whose waits advance the fake clock instead of sleeping."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock = clock

    def wait(self, timeout: float | None = None) -> bool:
        assert timeout is not None, "the link never waits without a bound"
        self.clock.now += timeout
        return self.is_set()


class FakeConnection:
    """Stands in for msgbus.transport.connection.Connection (the Linked protocol)."""

    def __init__(self, url: BrokerURL) -> None:
        self.url = url
        self.closed_reason: str | None = None
        self.subscribed: list[tuple[str, dict[str, str]]] = []

    @property
    def connected(self) -> bool:
        return self.closed_reason is None

    def close(self, reason: str = "closed by the client") -> None:
        self.closed_reason = self.closed_reason or reason

    def disconnect(self, timeout: float | None = None) -> None:
        self.close()

    def subscribe(self, destination: str, *, id: str, headers: dict[str, str]) -> None:
        self.subscribed.append((destination, headers))


class Brokers:
    """Which brokers answer; records every attempt (url, time)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.up: set[str] = set()
        self.attempts: list[tuple[str, float]] = []
        self.made: list[FakeConnection] = []

    def open(self, url: BrokerURL) -> FakeConnection:
        self.attempts.append((url.host, self.clock.now))
        if url.host not in self.up:
            raise ConnectError(f"cannot connect to {url}: Connection refused")
        conn = FakeConnection(url)
        self.made.append(conn)
        return conn


def _durable(conn: FakeConnection) -> None:
    conn.subscribe("/topic/probes", id="nagios", headers={"activemq.subscriptionName": "nagios"})


def _link(clock: Clock, brokers: Brokers, **kw: object) -> tuple[Link[FakeConnection], Stop]:
    settings = ConnectionConfig.model_validate(
        {"brokers": BROKERS, "reconnect_initial_delay": 1.0, "reconnect_max_delay": 8.0}
    )
    stop = Stop(clock)
    link: Link[FakeConnection] = Link(
        "test link",
        settings,
        open=brokers.open,
        subscriptions=[_durable],
        stop=stop,
        rng=random.Random(7),
        clock=clock,
        **kw,  # type: ignore[arg-type]
    )
    return link, stop


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def brokers(clock: Clock) -> Brokers:
    return Brokers(clock)


def test_failover_takes_the_first_broker_that_answers_in_order(
    clock: Clock, brokers: Brokers
) -> None:
    brokers.up = {"mq2", "mq3"}
    link, _ = _link(clock, brokers)
    assert link.connection().url.host == "mq2"
    assert [host for host, _ in brokers.attempts] == ["mq1", "mq2"]
    # mq2 goes away: the next connection starts again from the top of the list.
    brokers.up = {"mq1", "mq3"}
    brokers.made[-1].close("the broker closed the connection")
    assert link.connection().url.host == "mq1"


def test_a_broker_that_stays_away_is_tried_with_back_off_not_in_a_tight_loop(
    clock: Clock, brokers: Brokers
) -> None:
    link, _ = _link(clock, brokers)
    start = clock.now

    def never(conn: FakeConnection) -> None:
        raise AssertionError("no broker is up")

    link.run(never, until=start + 120)
    assert clock.now == pytest.approx(start + 120)  # ran to the end, not returned early
    rounds = [t for host, t in brokers.attempts if host == "mq1"]
    gaps = [b - a for a, b in itertools.pairwise(rounds)]
    # 120 s with waits of 1 s growing to 8 s: a few dozen rounds, never thousands.
    assert 12 <= len(rounds) <= 40, len(rounds)
    assert min(gaps) >= 1.0 and max(gaps) > 4.0 and max(gaps) <= 8.0


def test_every_subscription_is_made_again_on_each_new_connection(
    clock: Clock, brokers: Brokers
) -> None:
    brokers.up = {"mq1"}
    link, stop = _link(clock, brokers)
    served: list[FakeConnection] = []

    def serve(conn: FakeConnection) -> None:
        served.append(conn)
        if len(served) < 3:
            conn.close("the broker closed the connection")
            raise ConnectionLost(f"connection to {conn.url} lost: the broker closed it")

    link.run(serve)
    assert len(served) == 3 and len({id(c) for c in served}) == 3
    for conn in served:
        assert conn.subscribed == [("/topic/probes", {"activemq.subscriptionName": "nagios"})]
    assert not stop.is_set() and link.connected  # serve returned: run returns, link stays


def test_one_log_line_per_change_of_state(
    clock: Clock, brokers: Brokers, caplog: pytest.LogCaptureFixture
) -> None:
    brokers.up = {"mq1"}
    link, _ = _link(clock, brokers)
    with caplog.at_level(logging.INFO, "msgbus"):
        conn = link.connection()
        brokers.up = set()
        conn.close("no data or heart-beat from the broker for 25.0 s")
        for _ in range(6):  # six failed attempts with the same error
            with pytest.raises(ConnectError):
                link.connection(until=clock.now + 0.5)
            clock.now += 10
        brokers.up = {"mq3"}
        link.connection()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3, lines
    assert lines[0].startswith("test link lost: connection to stomp://mq1:61613 lost: no data")
    assert lines[1].startswith("test link failed: no broker could be reached")
    assert lines[2] == "test link: connected again to stomp://mq3:61613"


def test_up_and_reconnects_are_metrics(clock: Clock, brokers: Brokers) -> None:
    registry = MetricsRegistry("msgbus_test")
    brokers.up = {"mq1"}
    link, _ = _link(clock, brokers, metrics=LinkMetrics(registry))

    def value(name: str) -> float | None:
        return registry.registry.get_sample_value(name, {"link": "test link"})

    assert value("msgbus_test_link_up") == 0
    link.connection()
    assert value("msgbus_test_link_up") == 1
    link.lost(ConnectionLost("gone"))
    assert value("msgbus_test_link_up") == 0
    link.connection()
    assert value("msgbus_test_link_up") == 1
    assert value("msgbus_test_link_reconnects_total") == 1


def test_a_request_while_backing_off_is_answered_at_once(clock: Clock, brokers: Brokers) -> None:
    """The gateway's use: no waiting in a request, one attempt when one is due."""
    link, _ = _link(clock, brokers)
    with pytest.raises(ConnectError, match="Connection refused"):
        link.connection(until=clock.now)
    before = len(brokers.attempts)
    with pytest.raises(ConnectError, match="next attempt in"):
        link.connection(until=clock.now)
    assert len(brokers.attempts) == before  # not due yet: nobody was asked
    brokers.up = {"mq2"}
    clock.now += 8.0
    assert link.connection(until=clock.now).url.host == "mq2"


def test_a_first_connection_that_must_succeed_raises(clock: Clock, brokers: Brokers) -> None:
    link, _ = _link(clock, brokers, fail_first=True)
    with pytest.raises(ConnectError, match="no broker could be reached"):
        link.connection()


def test_a_client_id_still_held_is_waited_out_even_on_the_first_connection(
    clock: Clock, brokers: Brokers
) -> None:
    busy = 3

    def open(url: BrokerURL) -> FakeConnection:
        nonlocal busy
        if busy:
            busy -= 1
            raise AuthenticationError(f"{url} refused the login: Client: c1 already connected")
        return FakeConnection(url)

    settings = ConnectionConfig.model_validate({"brokers": BROKERS[:1]})
    link = Link("test link", settings, open=open, fail_first=True, clock=clock, stop=Stop(clock))
    assert link.connection().url.host == "mq1"


def test_permanent_errors_are_never_retried(clock: Clock, brokers: Brokers) -> None:
    calls: list[float] = []

    def refused(url: BrokerURL) -> FakeConnection:
        calls.append(clock.now)
        raise AuthenticationError(f"{url} refused the login: bad password")

    settings = ConnectionConfig.model_validate({"brokers": BROKERS[:1]})
    link = Link(
        "test link",
        settings,
        open=refused,
        permanent=(AuthenticationError,),
        clock=clock,
        stop=Stop(clock),
    )
    with pytest.raises(AuthenticationError):
        link.connection(until=clock.now + 60)
    assert len(calls) == 1


def test_a_refused_subscription_closes_the_connection_and_backs_off(
    clock: Clock, brokers: Brokers
) -> None:
    """The reconnect storm: login taken, subscription refused, again and again."""
    brokers.up = {"mq1"}

    def refuse(conn: FakeConnection) -> None:
        raise BrokerError("User probe is not authorized to read from: /queue/msgbus.control.x")

    settings = ConnectionConfig.model_validate(
        {"brokers": BROKERS[:1], "reconnect_initial_delay": 1.0, "reconnect_max_delay": 8.0}
    )
    link: Link[FakeConnection] = Link(
        "test link", settings, open=brokers.open, subscriptions=[refuse], clock=clock,
        stop=Stop(clock),
    )  # fmt: skip
    served: list[FakeConnection] = []
    link.run(served.append, until=clock.now + 60)
    assert not served
    assert all(not c.connected for c in brokers.made)
    assert 6 <= len(brokers.attempts) <= 20, len(brokers.attempts)


def test_run_ends_with_stop_and_retries_only_what_it_is_told(
    clock: Clock, brokers: Brokers
) -> None:
    brokers.up = {"mq1"}
    link, stop = _link(clock, brokers)

    def bug(conn: FakeConnection) -> None:
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        link.run(bug)
    stop.set()
    link.run(bug)  # stopped: serve is not called again


def test_a_healthy_connection_dropped_while_idle_is_made_again_at_once(
    clock: Clock, brokers: Brokers
) -> None:
    """A broker restarted between two sends of a publisher that may not wait (retry_for
    0): one attempt at once, then the back-off."""
    brokers.up = {"mq1"}
    link, _ = _link(clock, brokers)
    first = link.connection(until=clock.now)
    clock.now += 60  # healthy for longer than the longest wait
    first.close("the broker closed the connection")
    again = link.connection(until=clock.now)
    assert again is not first and again.connected
    again.close("the broker closed the connection")  # at once: flapping now, so back off
    with pytest.raises(ConnectError, match="backing off"):
        link.connection(until=clock.now)


def test_a_retired_connection_is_replaced_at_once(clock: Clock, brokers: Brokers) -> None:
    """The publisher gives up a connection the broker closed after refusing a message:
    no failure, no waiting."""
    brokers.up = {"mq1"}
    link, _ = _link(clock, brokers)
    first = link.connection(until=clock.now)
    link.retire("abandoned after: message too large")
    assert not first.connected
    assert link.connection(until=clock.now) is not first
