"""The pure parts of planning a RabbitMQ apply: what changed in a policy or a node's
rabbitmq.conf, as the plan says it."""

from __future__ import annotations

import json

from msgbus.network.rabbitmq_apply import _config_diff, _policy_changes


def _policy(name: str, **definition: object) -> dict[str, object]:
    return {"name": name, "pattern": f"^{name}$", "definition": definition}


def test_policy_changes_name_each_setting_that_differs() -> None:
    # rabbitmqctl's JSON gives a policy's definition as a JSON string.
    live = [
        {**_policy("msgbus-q"), "definition": json.dumps({"delivery-limit": 20})},
        _policy("msgbus-gone", **{"delivery-limit": 20}),
        _policy("operators-own", **{"max-length": 1}),
    ]
    wanted = [
        _policy("msgbus-q", **{"delivery-limit": 5, "max-length": 100}),
        _policy("msgbus-new", **{"delivery-limit": 20}),
    ]
    assert _policy_changes(live, wanted) == [
        "policy msgbus-q: delivery-limit 20 -> 5, max-length - -> 100",
        "add policy msgbus-new",
        "clear policy msgbus-gone",  # an operator's own policy is left alone
    ]
    assert _policy_changes(wanted, wanted) == []


def test_config_diff_is_by_setting_not_by_comment() -> None:
    old = "# node a of t\nlisteners.tcp.1 = 127.0.0.1:1\nconnection_max = 10\n"
    new = "# node a of t, re-rendered\nlisteners.tcp.1 = 127.0.0.1:1\nconnection_max = 20\n"
    assert _config_diff(old, new) == ["connection_max"]
    assert _config_diff(old, old + "stomp.listeners.ssl.1 = 127.0.0.1:2\n") == [
        "stomp.listeners.ssl.1"
    ]
