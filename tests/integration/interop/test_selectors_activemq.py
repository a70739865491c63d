"""Selectors: the embedded broker selects exactly the messages a real ActiveMQ 5.17 selects.

Hypothesis draws selectors (tests/fixtures/selectors.py) and messages; for each selector
both brokers get a fresh queue with a stomp.py subscription using it, the same messages,
then an end marker that the subscription's selector always selects (``mbmark = 'end' OR
(...)``, the marker first so ActiveMQ's OR never evaluates the rest for it): when the
marker arrives, everything selected before it has too. A selector refused by one broker
must be refused (an ERROR frame) by the other.

A message on which ActiveMQ's evaluation throws (arithmetic on a string, a boolean against
a string) stalls that queue in ActiveMQ ("Failed to page in more queue messages"), so such
messages are left out; the embedded broker's own ``EvaluationFailed`` says which they are,
and a wrong call shows as ActiveMQ never delivering the marker.

MSGBUS_SELECTOR_EXAMPLES sets the number of examples (default 100, about 15 s on two
cores); e.g. MSGBUS_SELECTOR_EXAMPLES=2000 for a long run.
"""

from __future__ import annotations

import os
import queue
import time
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from msgbus.broker import BrokerThread
from msgbus.broker.selector import EvaluationFailed, InvalidSelector, Selector
from tests.fixtures.activemq import ActiveMQ
from tests.fixtures.selectors import header_sets, selectors
from tests.integration.conformance.clients import Client, Target

pytestmark = pytest.mark.interop

EXAMPLES = int(os.environ.get("MSGBUS_SELECTOR_EXAMPLES", "100"))
WAIT = 10.0
# Priority 0: last in line even where ActiveMQ orders a queue by priority.
MARKER = {"mbmark": "end", "priority": "0"}

Outcome = str | list[int]  # "refused", or the indices of the messages delivered


@pytest.fixture(scope="module")
def brokers(activemq: ActiveMQ, shared_embedded_broker: BrokerThread) -> dict[str, Target]:
    return {
        "activemq": Target("activemq", activemq.host, activemq.port),
        "embedded": Target("embedded", "127.0.0.1", shared_embedded_broker.port),
    }


def _wrapped(selector: str) -> str:
    return f"mbmark = 'end' OR ({selector})"


def _subscribed(client: Client, timeout: float = WAIT) -> bool:
    """True on the subscription's RECEIPT, False on an ERROR frame."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not client.events.errors.empty():
            return False
        try:
            if client.events.receipts.get(timeout=0.05) == "sub":
                return True
        except queue.Empty:
            continue
    raise AssertionError(f"neither RECEIPT nor ERROR for a SUBSCRIBE within {timeout}s")


def _run(target: Target, selector: str, messages: list[dict[str, str]]) -> Outcome:
    """Subscribe with ``selector`` on a fresh queue, send ``messages`` (index by index) and
    the marker; the indices delivered before the marker, or "refused"."""
    client = target.client()
    try:
        name = f"/queue/selectors.{uuid.uuid4().hex[:12]}"
        client.conn.subscribe(
            name, id="s", ack="auto", receipt="sub", headers={"selector": _wrapped(selector)}
        )
        if not _subscribed(client):
            return "refused"
        for index, headers in enumerate(messages):
            client.conn.send(name, str(index), headers={**headers, "i": str(index)})
        client.conn.send(name, "end", headers=MARKER)
        got: list[int] = []
        deadline = time.monotonic() + WAIT
        while True:
            try:
                frame = client.events.messages.get(timeout=max(deadline - time.monotonic(), 0))
            except queue.Empty:
                raise AssertionError(
                    f"{target.kind} did not deliver the end marker for {selector!r} within "
                    f"{WAIT}s (ActiveMQ stalls a queue whose selector throws: see activemq.log)"
                ) from None
            if frame.headers.get("mbmark") == "end":
                return sorted(got)
            got.append(int(frame.headers["i"]))
    finally:
        client.close()


def _evaluable(selector: str, messages: list[dict[str, str]]) -> list[int]:
    """Indices of the messages ActiveMQ can evaluate ``selector`` on without throwing."""
    try:
        compiled = Selector.parse(_wrapped(selector))
    except InvalidSelector:
        return list(range(len(messages)))
    keep = []
    for index, headers in enumerate(messages):
        try:
            compiled.evaluate(headers)
        except EvaluationFailed:
            continue
        keep.append(index)
    return keep


def _compare(brokers: dict[str, Target], selector: str, messages: list[dict[str, str]]) -> None:
    keep = _evaluable(selector, messages)
    sent = [messages[i] for i in keep]
    outcomes = {kind: _run(target, selector, sent) for kind, target in brokers.items()}
    assert outcomes["embedded"] == outcomes["activemq"], (
        f"selector {selector!r} on {sent}: embedded {outcomes['embedded']}, "
        f"ActiveMQ {outcomes['activemq']}"
    )


@pytest.mark.parametrize("selector", ["prio >= 4", "prio = 5", "prio BETWEEN 4 AND 6"])
def test_a_numeric_string_header_is_selected_by_both(
    brokers: dict[str, Target], selector: str
) -> None:
    messages = [{"prio": "5"}, {"prio": "3"}, {"prio": "5.0"}, {"prio": "x"}, {}]
    outcomes = {kind: _run(target, selector, messages) for kind, target in brokers.items()}
    assert outcomes == {"activemq": [0], "embedded": [0]}


# Java's literal types, overflow, division and Double.toString, as `+` after a string shows.
_JAVA_EDGES = [
    "n + 1.5 = '51.5'",
    "n + 10000000.0 = '51.0E7'",
    "n + 0.0001 = '51.0E-4'",
    "n + TRUE = '5true'",
    "n + (2147483647 + 1) = '5-2147483648'",
    "n + 7/2 = '53.5'",
    "n + 1/0 = '5Infinity'",
    "n + 0/0.0 = '5NaN'",
    "n + 7 % 2 = '51.0'",
    "n + -0.0 = '5-0.0'",
    "n + 123456789.0 = '51.23456789E8'",
    "n + 9223372036854775807 * 2 = '5-2'",
    "n + 9223372036854775808 = '59223372036854775808'",
    "n + -9223372036854775808 = '5-9223372036854775808'",
    "n + 18446744073709551616 = '50'",
    "n = 010 - 3",
    "n = 0x5",
    "NOT ('x' = missing)",
]


@pytest.mark.parametrize("selector", _JAVA_EDGES)
def test_java_value_rules_agree(brokers: dict[str, Target], selector: str) -> None:
    messages = [{"n": "5"}]
    outcomes = {kind: _run(target, selector, messages) for kind, target in brokers.items()}
    assert outcomes == {"activemq": [0], "embedded": [0]}


@pytest.mark.parametrize(
    "selector",
    [
        "prio > 'x'",
        "TRUE = 1",
        "prio = NULL",
        "prio NOT = 1",
        "NOT prio > 1",
        "NOT prio IN ('a')",
        "(prio = 1) > 0",
        "prio + 1",
        "prio LIKE 'a' ESCAPE 'ab'",
        "prio.x = 1",
        "x = 0xFFFFFFFFFFFFFFFFF",
        "prio = 1 AND",
    ],
)
def test_an_invalid_selector_is_an_error_on_both(
    brokers: dict[str, Target], selector: str
) -> None:
    outcomes = {kind: _run(target, selector, [{"prio": "5"}]) for kind, target in brokers.items()}
    assert outcomes == {"activemq": "refused", "embedded": "refused"}


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    st.lists(selectors(), min_size=1, max_size=3),
    st.lists(header_sets(), min_size=2, max_size=7),
)
def test_generated_selectors_select_the_same_messages(
    brokers: dict[str, Target], texts: list[str], messages: list[dict[str, str]]
) -> None:
    for selector in texts:
        _compare(brokers, selector, messages)
