"""Presence/control wire format: destinations, targets, parsing."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from msgbus.errors import ControlError
from msgbus.presence.messages import (
    Announcement,
    ControlReply,
    ControlRequest,
    Destinations,
    Target,
    default_name,
    fold,
    parse,
)


def test_default_name_is_kind_at_host_colon_pid() -> None:
    import os
    import socket

    assert default_name("consumer") == f"consumer@{socket.gethostname()}:{os.getpid()}"


def test_fold_keeps_destination_safe_characters_only() -> None:
    assert fold("consumer@ce01.example.org:1234") == "consumer_ce01_example_org_1234"
    assert fold("a-b_C9") == "a-b_C9"


@given(st.text(max_size=40))
def test_fold_never_leaves_activemq_separators_or_wildcards(name: str) -> None:
    folded = fold(name)
    assert len(folded) == len(name)
    assert not set(folded) & set(".*>/ \n:")


def test_destinations_per_scope() -> None:
    dest = Destinations("msgbus.control")
    assert Target(scope="name", value="c@h:1").destination(dest) == "/queue/msgbus.control.c_h_1"
    assert Target(scope="kind", value="consumer").destination(dest) == (
        "/topic/msgbus.control.kind.consumer"
    )
    assert Target(scope="site", value="CERN-PROD").destination(dest) == (
        "/topic/msgbus.control.site.CERN-PROD"
    )
    assert Target(scope="all").destination(dest) == "/topic/msgbus.control.all"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (Target(scope="name", value="c1"), True),
        (Target(scope="name", value="c2"), False),
        (Target(scope="kind", value="consumer"), True),
        (Target(scope="kind", value="publisher"), False),
        (Target(scope="site", value="S1"), True),
        (Target(scope="site", value="S2"), False),
        (Target(scope="all"), True),
    ],
)
def test_target_matches(target: Target, expected: bool) -> None:
    assert target.matches("c1", "consumer", "S1") is expected


def test_target_by_site_never_matches_a_component_without_site() -> None:
    assert not Target(scope="site", value="").matches("c1", "consumer", None)


def _announcement() -> Announcement:
    return Announcement(
        name="c1",
        kind="consumer",
        site="S1",
        host="h",
        pid=7,
        version="0.1.0",
        state="running",
        started_at=1.0,
        sent_at=2.0,
        interval=10.0,
        control="/queue/x",
        counters={"stored": 3.0},
    )


def test_each_message_type_round_trips() -> None:
    request = ControlRequest(command="pause", sender="alice", target=Target(scope="all"))
    reply = ControlReply(
        request_id=request.id, name="c1", kind="consumer", command="pause", ok=True, result={"a": 1}
    )
    for message in (_announcement(), request, reply):
        assert parse(message.model_dump_json().encode()) == message


def test_request_ids_are_unique() -> None:
    ids = {
        ControlRequest(command="x", sender="a", target=Target(scope="all")).id for _ in range(50)
    }
    assert len(ids) == 50


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'{"type": "other"}',
        b'{"type": "presence", "name": "x"}',
        b'{"type": "control-request", "command": "", "sender": "a", "target": {"scope": "all"}}',
    ],
)
def test_parse_rejects_foreign_bodies_with_control_error(body: bytes) -> None:
    with pytest.raises(ControlError, match="not a msgbus presence/control message"):
        parse(body)


@given(st.binary(max_size=200))
def test_parse_raises_only_control_error(body: bytes) -> None:
    # Anything else (ValueError, KeyError...) escaping parse() fails the test.
    with contextlib.suppress(ControlError):
        parse(body)
