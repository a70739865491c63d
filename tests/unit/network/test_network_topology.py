"""Topology validation and reachability (no brokers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from msgbus.errors import NetworkError
from msgbus.network.topology import destination_matches, load_topology, parse_topology

BROKERS = Path(__file__).resolve().parents[3] / "brokers"


def _topo(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "security": {"authentication": False},
        "brokers": [
            {"name": n, "ports": {"stomp": 61000 + i, "openwire": 62000 + i}}
            for i, n in enumerate("abc")
        ],
    }
    data.update(overrides)
    return data


@pytest.mark.parametrize("name", ["single.yaml", "line.yaml", "failover-pair.yaml"])
def test_examples_load(name: str) -> None:
    topo = load_topology(BROKERS / name)
    assert topo.brokers
    assert topo.security.authentication  # secure by default, examples included


def test_tls_paths_are_relative_to_the_topology_file() -> None:
    topo = load_topology(BROKERS / "failover-pair.yaml")
    assert topo.tls is not None
    assert topo.tls.keystore == BROKERS / "tls" / "broker.p12"


def test_link_to_unknown_broker_is_named() -> None:
    with pytest.raises(NetworkError, match=r"unknown broker 'x'.*known brokers: a, b, c"):
        parse_topology(_topo(links=[{"from": "a", "to": "x"}]))


def test_port_clash_names_both_brokers() -> None:
    data = _topo()
    data["brokers"][1]["ports"]["stomp"] = 61000
    with pytest.raises(NetworkError, match=r"port clash: brokers 'a' and 'b'.*61000"):
        parse_topology(data)


def test_same_port_on_different_hosts_is_fine() -> None:
    data = _topo()
    data["brokers"][1]["ports"]["stomp"] = 61000
    data["brokers"][1]["host"] = "10.0.0.2"
    assert parse_topology(data).broker("b").host == "10.0.0.2"


def test_cycle_with_ttl_that_loops_is_rejected() -> None:
    links = [
        {"from": "a", "to": "b", "ttl": 3},
        {"from": "b", "to": "c", "ttl": 3},
        {"from": "c", "to": "a", "ttl": 3},
    ]
    with pytest.raises(NetworkError, match=r"link cycle a -> b -> c -> a with TTL 3"):
        parse_topology(_topo(links=links))


def test_cycle_with_short_ttl_is_accepted() -> None:
    links = [
        {"from": "a", "to": "b", "ttl": 2},
        {"from": "b", "to": "c", "ttl": 2},
        {"from": "c", "to": "a", "ttl": 2},
    ]
    assert len(parse_topology(_topo(links=links)).links) == 3


def test_duplex_line_is_not_a_cycle() -> None:
    links = [
        {"from": "a", "to": "b", "duplex": True, "ttl": 4},
        {"from": "b", "to": "c", "duplex": True, "ttl": 4},
    ]
    assert parse_topology(_topo(links=links))


def test_authentication_without_users_is_refused() -> None:
    with pytest.raises(NetworkError, match="no users are declared"):
        parse_topology(_topo(security={}))


def test_permission_with_unknown_group() -> None:
    data = _topo(
        security={"authentication": True},
        users=[{"name": "admin", "password": "x", "groups": ["admins"]}],
        permissions=[{"destination": "/queue/>", "read": ["ghosts"]}],
    )
    with pytest.raises(NetworkError, match=r"groups no user is in: \['ghosts'\]"):
        parse_topology(data)


def test_stomp_ssl_needs_tls() -> None:
    data = _topo()
    data["brokers"][0]["ports"]["stomp_ssl"] = 61443
    with pytest.raises(NetworkError, match="no tls section"):
        parse_topology(data)


def test_bad_destination_and_unknown_field_are_reported_with_location() -> None:
    with pytest.raises(NetworkError, match=r"links\.0.*must look like /queue/NAME"):
        parse_topology(_topo(links=[{"from": "a", "to": "b", "destinations": ["grid"]}]))
    with pytest.raises(NetworkError, match=r"brokers\.0\.colour"):
        data = _topo()
        data["brokers"][0]["colour"] = "red"
        parse_topology(data)


def test_unreadable_and_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(NetworkError, match="cannot read topology"):
        load_topology(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("brokers: [\n")
    with pytest.raises(NetworkError, match="not valid YAML"):
        load_topology(bad)


def test_reachability_follows_direction_ttl_and_destinations() -> None:
    links = [
        {"from": "a", "to": "b", "ttl": 2},
        {"from": "b", "to": "c", "ttl": 2, "destinations": ["/topic/grid.>"]},
    ]
    topo = parse_topology(_topo(links=links))
    assert topo.reachable("/topic/grid.x") == {("a", "b"), ("b", "c"), ("a", "c")}
    assert topo.reachable("/topic/other") == {("a", "b")}
    short = parse_topology(_topo(links=[{**x, "ttl": 1} for x in links]))
    assert short.reachable("/topic/grid.x") == {("a", "b"), ("b", "c")}


def test_duplex_reaches_both_ways() -> None:
    topo = parse_topology(_topo(links=[{"from": "a", "to": "b", "duplex": True}]))
    assert topo.reachable("/queue/q") == {("a", "b"), ("b", "a")}


_element = st.text(alphabet="abcxyz0", min_size=1, max_size=4)


@given(kind=st.sampled_from(["queue", "topic"]), parts=st.lists(_element, min_size=1, max_size=5))
def test_destination_matches_itself_and_its_wildcards(kind: str, parts: list[str]) -> None:
    dest = f"/{kind}/{'.'.join(parts)}"
    assert destination_matches(dest, dest)
    assert destination_matches(f"/{kind}/>", dest)
    assert destination_matches(f"/{kind}/{'.'.join(['*'] * len(parts))}", dest)
    assert destination_matches(f"/{kind}/{'.'.join([*parts[:-1], '>'])}", dest)
    other = "topic" if kind == "queue" else "queue"
    assert not destination_matches(f"/{other}/>", dest)
    assert not destination_matches(f"/{kind}/{'.'.join([*parts, 'more'])}", dest)


def test_consumer_group_on_unknown_broker() -> None:
    data = _topo(virtual_topics=["t"], consumer_groups=[{"name": "store", "brokers": ["z"]}])
    with pytest.raises(NetworkError, match=r"consumer group 'store' names unknown brokers \['z'\]"):
        parse_topology(data)


def test_meshed_triangle_reaches_every_pair() -> None:
    pairs = [("a", "b"), ("b", "c"), ("a", "c")]
    for ttl in (1, 2):
        links = [{"from": x, "to": y, "duplex": True, "ttl": ttl} for x, y in pairs]
        core = parse_topology(_topo(links=links))
        assert core.reachable("/topic/x") == {(x, y) for x in "abc" for y in "abc" if x != y}
