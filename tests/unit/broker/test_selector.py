"""JMS selectors as ActiveMQ 5.17 evaluates STOMP headers; nothing but InvalidSelector on
bad input. tests/integration/interop/test_selectors_activemq.py checks the same rules
against a real ActiveMQ."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from msgbus.broker.selector import EvaluationFailed, InvalidSelector, Selector
from tests.fixtures.selectors import header_sets, selectors

HEADERS = {"state": "DONE", "vo": "atlas", "owner": "/DC=ch/CN=Ann", "n": "5", "priority": "7"}


@pytest.mark.parametrize("text", ["prio >= 4", "prio = 5", "prio BETWEEN 4 AND 6"])
def test_a_numeric_string_header_compares_as_a_number(text: str) -> None:
    # Issue 23 item 6: ActiveMQ selects these for the STOMP header prio:5.
    assert Selector.parse(text).matches({"prio": "5"}) is True
    assert Selector.parse(text).matches({"prio": "3"}) is False


@pytest.mark.parametrize(
    ("text", "selected"),
    [
        ("state = 'DONE'", True),
        ("state <> 'DONE'", False),
        ("vo IN ('atlas', 'cms')", True),
        ("vo NOT IN ('atlas')", False),
        ("owner LIKE '%Ann'", True),
        ("owner LIKE '/DC=__/%'", True),
        ("missing IS NULL AND state IS NOT NULL", True),
        # Unknown (a missing header) is neither true nor false: NOT keeps it unknown...
        ("missing = 'x'", False),
        ("NOT (missing = 'x')", False),
        ("missing = 'x' OR state = 'DONE'", True),
        # ...but a value against a missing one is false, so its NOT is true.
        ("NOT ('x' = missing)", True),
        ("missing = other", True),
        ("n > 3", True),
        ("n = 5.0 AND n < 5.5", True),
        ("n = '5'", True),
        ("n IN ('5')", True),
        ("n + 1 = '51'", True),  # + after a string concatenates
        ("n = FALSE", True),  # a string is a boolean true only if it reads "true"
        ("n", False),  # a string header is never a boolean condition
        ("NOT n", True),
        ("n = 010", False),  # octal 8
        ("n = 0x5", True),
        ("priority = 7", False),  # the STOMP priority header is JMSPriority, not a property
        ("JMSPriority BETWEEN 5 AND 9 AND JMSPriority * 2 = 14", True),
        ("JMSPriority NOT BETWEEN 5 AND 9", False),
        ("(state = 'DONE' OR FALSE) AND NOT (vo = 'cms')", True),
        ("state = 'it''s'", False),
        ("owner LIKE '%Ann' ESCAPE 'A'", True),  # A escapes only %, _ and itself
    ],
)
def test_selection(text: str, selected: bool) -> None:
    assert Selector.parse(text).matches(HEADERS) is selected


@pytest.mark.parametrize(
    ("value", "literal", "selected"),
    [
        ("5.0", "5", False),  # Integer.valueOf("5.0") fails: false, not unknown
        (" 5", "5", False),
        ("+5", "5", True),
        ("05", "5", True),
        ("5.0", "5.0", True),
        (" 5 ", "5.0", True),  # Double.valueOf trims
        ("1e3", "1000.0", True),
        ("5d", "5.0", True),
        ("0x10", "16", False),
        ("2147483648", "2147483648", True),  # a Long literal reads the string as a long
        ("2147483648", "2147483647 + 1", False),  # Integer overflow wraps to a negative
    ],
)
def test_string_to_number_conversion(value: str, literal: str, selected: bool) -> None:
    assert Selector.parse(f"v = {literal}").matches({"v": value}) is selected


def test_a_string_that_does_not_convert_is_false_so_not_selects() -> None:
    assert Selector.parse("NOT (v = 5)").matches({"v": "abc"}) is True
    assert Selector.parse("NOT (v = 5)").matches({}) is False


@pytest.mark.parametrize("text", ["v - 1 > 0", "NOT v = 'x'", "TRUE = v"])
def test_where_activemq_throws_the_message_is_not_selected(text: str) -> None:
    selector = Selector.parse(text)
    with pytest.raises(EvaluationFailed):
        selector.evaluate({"v": "5"})
    assert selector.matches({"v": "5"}) is False


def test_and_stops_at_the_first_part_that_is_not_true() -> None:
    # ActiveMQ's AND.matches never reaches the failing part when the first is unknown.
    assert Selector.parse("missing = 1 AND v - 1 > 0").evaluate({"v": "5"}) is False


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("state = = 'x'", "unexpected '='"),
        ("state = 'open", "unexpected character"),
        ("job < 'j3'", "only numbers"),
        ("job BETWEEN 'a' AND 'b'", "only numbers"),
        ("TRUE = 1", "TRUE cannot be compared with 1"),
        ("state = NULL", "IS \\[NOT\\] NULL"),
        ("NOT a > 1", "cannot be compared"),
        ("vo IN 'cms'", "expected \\("),
        ("NOT vo IN ('cms')", "IN needs a property"),
        ("state NOT = 'x'", "unexpected 'NOT'"),
        ("owner LIKE '%' ESCAPE 'ab'", "one character"),
        ("a + 1", "not a condition"),
        ("5", "not a condition"),
        ("message-id", "not a condition"),  # message minus id: no hyphen in a name
        ("a.b = 1", "unexpected character '.'"),
        ("x = 0xFFFFFFFFFFFFFFFFF", "does not fit in a long"),
        ("REGEX('a', b)", "function calls"),
        ("", "unexpected the end"),
    ],
)
def test_errors_say_what_and_where(text: str, says: str) -> None:
    with pytest.raises(InvalidSelector, match=says):
        Selector.parse(text)


def test_comments_and_keyword_case() -> None:
    selector = Selector.parse("/* any */ state = 'DONE' -- trailing\nand n between 4 and 6")
    assert selector.matches(HEADERS) is True


_PIECES = [*"ab'()=<>,%_ 0123.-+*/xXeEL\n", "NOT ", "AND ", "IN ", "IS ", "NULL", "/*", "*/"]


@given(st.lists(st.sampled_from(_PIECES), max_size=30).map("".join))
def test_any_text_parses_or_is_an_invalid_selector(text: str) -> None:
    try:
        selector = Selector.parse(text)
    except InvalidSelector:
        return
    try:
        assert selector.evaluate(HEADERS) in (True, False)
    except EvaluationFailed:
        assert selector.matches(HEADERS) is False


@given(selectors(), header_sets())
def test_generated_selectors_parse_or_are_refused_and_evaluate(
    text: str, headers: dict[str, str]
) -> None:
    try:
        selector = Selector.parse(text)
    except InvalidSelector as exc:
        assert str(exc)  # says what is wrong
        return
    assert selector.matches(headers) in (True, False)
