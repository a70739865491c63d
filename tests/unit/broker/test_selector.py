"""JMS selectors: parsing, three-valued logic, and nothing but InvalidSelector on bad input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from msgbus.broker.selector import InvalidSelector, Selector

HEADERS = {"state": "DONE", "vo": "atlas", "owner": "/DC=ch/CN=Ann", "n": "5", "priority": "7"}


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
        # Unknown (a missing header) is neither true nor false: NOT keeps it unknown.
        ("missing = 'x'", False),
        ("NOT missing = 'x'", False),
        ("missing = 'x' OR state = 'DONE'", True),
        ("n > 3", False),  # a string header is never a number
        ("JMSPriority BETWEEN 5 AND 9 AND JMSPriority * 2 = 14", True),
        ("JMSPriority NOT BETWEEN 5 AND 9", False),
        ("(state = 'DONE' OR FALSE) AND NOT vo = 'cms'", True),
        ("state = 'it''s'", False),
    ],
)
def test_selection(text: str, selected: bool) -> None:
    assert Selector.parse(text).matches(HEADERS) is selected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("state = = 'x'", "unexpected '='"),
        ("state = 'open", "unexpected"),
        ("job < 'j3'", "only numbers"),
        ("job BETWEEN 'a' AND 'b'", "only numbers"),
        ("vo IN 'cms'", "expected '\\('"),
        ("state NOT = 'x'", "expected IN, LIKE or BETWEEN"),
        ("owner LIKE '%' ESCAPE 'ab'", "one character"),
        ("", "unexpected 'end'"),
    ],
)
def test_errors_say_what_and_where(text: str, says: str) -> None:
    with pytest.raises(InvalidSelector, match=says):
        Selector.parse(text)


@given(
    st.text(alphabet=st.sampled_from(list("ab'()=<>,%_ 0123.-+*/NOTANDORINLIKEISNUL")), max_size=40)
)
def test_any_text_parses_or_is_an_invalid_selector(text: str) -> None:
    try:
        selector = Selector.parse(text)
    except InvalidSelector:
        return
    assert selector.matches(HEADERS) in (True, False)
