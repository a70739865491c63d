"""Change a running RabbitMQ cluster to a new topology node by node, losing nothing.

The plan is made against the running cluster, not a file: its members (``cluster_status``),
each node's ``rabbitmq.conf`` on disk, and its definitions as ``rabbitmqctl`` lists them
(the management plugin is not enabled on these nodes, so nothing here needs it), so an
apply that was interrupted is planned again from where it stopped. Steps, in order:

1. add a node: start it, join it to the cluster, and give every quorum queue a replica
   on it (``rabbitmq-queues grow``), before anything is taken away;
2. definitions: ``import_definitions`` upserts users, permissions, queues and policies
   (dead-letter, delivery-limit, max-length), then users and msgbus policies the topology
   no longer names are deleted (queues never are: they may hold messages);
3. restart a node whose ``rabbitmq.conf`` changed, one at a time, only while no quorum
   queue would lose its majority by it (``check_if_node_is_quorum_critical``);
4. remove a node: refused while a classic queue on it holds messages (a topic subscriber
   of its own: move that client first); else its quorum replicas are moved off
   (``rabbitmq-queues shrink``), it leaves (``stop_app``, ``forget_cluster_node`` on a
   survivor), stops, and its data directory is deleted, so it can never come back
   believing it is still a member.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from msgbus.errors import NetworkError
from msgbus.network.rabbitmq import node_name, render_definitions, render_node_config
from msgbus.network.rabbitmq_local import RabbitCluster, RabbitNode
from msgbus.network.topology import Broker, Topology

__all__ = ["ClusterPlan", "ClusterStep", "apply_cluster", "plan_cluster"]

_OURS = "msgbus-"  # policies msgbus renders; others (an operator's own) are left alone


@dataclass(frozen=True)
class ClusterStep:
    action: Literal["add", "definitions", "restart", "remove"]
    node: str = ""
    changes: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.action == "add":
            return f"add node {self.node}: start it, join the cluster, grow quorum queues onto it"
        if self.action == "definitions":
            return "definitions: " + "; ".join(self.changes)
        if self.action == "restart":
            why = ", ".join(self.changes)
            return f"restart node {self.node} with its new rabbitmq.conf ({why})"
        return (
            f"remove node {self.node}: shrink its quorum replicas onto the others, "
            "forget it in the cluster, stop it, delete its data"
        )


@dataclass
class ClusterPlan:
    new: Topology
    steps: list[ClusterStep] = field(default_factory=list)
    leaving: dict[str, Broker] = field(default_factory=dict)
    """Members the new topology drops, as the saved topology described them."""


def plan_cluster(cluster: RabbitCluster) -> ClusterPlan:
    """The steps that turn the running cluster into ``cluster.topology``."""
    new = cluster.topology
    saved = _saved_brokers(cluster.state_dir)
    seed = _running_node(cluster, saved)
    members = set(cluster.members(seed, "disk_nodes"))
    wanted = {node_name(new, b): b for b in new.brokers}
    plan = ClusterPlan(new)
    for node, broker in wanted.items():
        if node not in members:
            plan.steps.append(ClusterStep("add", broker.name))
    changes = definition_changes(cluster, seed)
    if changes:
        plan.steps.append(ClusterStep("definitions", changes=tuple(changes)))
    for node, broker in wanted.items():
        conf = cluster.state_dir / broker.name / "rabbitmq.conf"
        if node in members and conf.exists():
            diff = _config_diff(
                conf.read_text(encoding="utf-8"), render_node_config(new, broker.name)
            )
            if diff:
                plan.steps.append(ClusterStep("restart", broker.name, tuple(diff)))
    known = {node_name(new, b): b for b in saved.values()}
    for node in sorted(members - set(wanted)):
        if node not in known:
            raise NetworkError(
                f"{node} is a member of the cluster but not of the saved topology in "
                f"{cluster.state_dir}: stop it and run `rabbitmqctl forget_cluster_node {node}` "
                "on a remaining node, then apply again"
            )
        plan.leaving[known[node].name] = known[node]
        plan.steps.append(ClusterStep("remove", known[node].name))
    return plan


def apply_cluster(
    plan: ClusterPlan, cluster: RabbitCluster, *, echo: Callable[[str], None] = print
) -> None:
    """Carry out ``plan``; raises NetworkError if the cluster is not as planned after."""
    # Until they are removed, leaving nodes are still part of what runs.
    merged = RabbitCluster(
        plan.new.model_copy(update={"brokers": [*plan.new.brokers, *plan.leaving.values()]}),
        cluster.state_dir,
    )
    for step in plan.steps:
        echo(f"- {step.describe()}")
        if step.action == "add":
            merged.up([step.node])
        elif step.action == "definitions":
            _apply_definitions(cluster, _running_node(cluster, plan.leaving))
        elif step.action == "restart":
            _restart(merged, step.node)
        else:
            _remove(merged, step.node, echo)
    saved = cluster.state_dir / "topology.json"
    saved.write_text(plan.new.model_dump_json(by_alias=True, indent=2), encoding="utf-8")
    problems = _settled(cluster)
    if problems:
        raise NetworkError("applied, but the cluster check failed: " + "; ".join(problems))


def definition_changes(cluster: RabbitCluster, seed: RabbitNode) -> list[str]:
    """What importing the topology's definitions would change, as one line each."""
    defs = render_definitions(cluster.topology)
    out = _policy_changes(_ctl_json(cluster, seed, "list_policies"), defs["policies"])
    users = {u["user"] for u in _ctl_json(cluster, seed, "list_users")}
    for user in cluster.topology.users:
        if user.name not in users:
            out.append(f"add user {user.name}")
        elif not _authenticates(cluster, seed, user.name, user.password):
            out.append(f"new password for {user.name}")
    out += [f"delete user {u}" for u in sorted(users - {u.name for u in cluster.topology.users})]
    live = {p["user"]: p for p in _ctl_json(cluster, seed, "list_permissions")}
    for perm in defs["permissions"]:
        have = live.get(perm["user"], {})
        if any(have.get(k) != perm[k] for k in ("configure", "write", "read")) and have:
            out.append(f"permissions of {perm['user']}")
    topic = {p["user"]: p for p in _ctl_json(cluster, seed, "list_topic_permissions")}
    rendered = {p["user"]: p for p in defs["topic_permissions"]}
    for user in sorted(set(topic) | set(rendered)):
        have, want = topic.get(user, {}), rendered.get(user, {})
        if any(have.get(k) != want.get(k) for k in ("write", "read")) and user in users:
            out.append(f"topic permissions of {user}")
    queues = {q["name"] for q in _ctl_json(cluster, seed, "list_queues", "name")}
    out += [f"declare quorum queue {q['name']}" for q in defs["queues"] if q["name"] not in queues]
    return out


def _policy_changes(live: list[dict[str, Any]], wanted: list[dict[str, Any]]) -> list[str]:
    have = {p["name"]: p for p in live}
    out = []
    for policy in wanted:
        old = have.get(policy["name"])
        if old is None:
            out.append(f"add policy {policy['name']}")
            continue
        old_def = old["definition"]
        if isinstance(old_def, str):  # rabbitmqctl's JSON gives it as a JSON string
            old_def = json.loads(old_def)
        keys = sorted(set(old_def) | set(policy["definition"]))
        diff = [
            f"{k} {old_def.get(k, '-')} -> {policy['definition'].get(k, '-')}"
            for k in keys
            if old_def.get(k) != policy["definition"].get(k)
        ]
        if diff or old["pattern"] != policy["pattern"]:
            out.append(f"policy {policy['name']}: {', '.join(diff) or 'pattern changed'}")
    names = {p["name"] for p in wanted}
    out += [f"clear policy {n}" for n in sorted(have) if n.startswith(_OURS) and n not in names]
    return out


def _apply_definitions(cluster: RabbitCluster, seed: RabbitNode) -> None:
    bin_dir = cluster.bin_dir
    with tempfile.TemporaryDirectory(prefix="msgbus-defs-") as tmp:
        defs = Path(tmp) / "definitions.json"
        defs.write_text(json.dumps(render_definitions(cluster.topology)), encoding="utf-8")
        seed.ctl(bin_dir, "import_definitions", str(defs))
    users = {u.name for u in cluster.topology.users}
    for row in _ctl_json(cluster, seed, "list_users"):
        if row["user"] not in users:
            seed.ctl(bin_dir, "delete_user", row["user"])
    wanted = {p["name"] for p in render_definitions(cluster.topology)["policies"]}
    for row in _ctl_json(cluster, seed, "list_policies"):
        if row["name"].startswith(_OURS) and row["name"] not in wanted:
            seed.ctl(bin_dir, "clear_policy", row["name"])
    topic = {p["user"] for p in render_definitions(cluster.topology)["topic_permissions"]}
    for row in _ctl_json(cluster, seed, "list_topic_permissions"):
        if row["user"] not in topic:
            seed.ctl(bin_dir, "clear_topic_permissions", row["user"])


def _restart(cluster: RabbitCluster, name: str, timeout: float = 120.0) -> None:
    node = cluster.process(name)
    _wait_not_quorum_critical(cluster, node, timeout)
    node.stop(cluster.bin_dir)
    cluster.up([name], timeout=timeout)


def _remove(cluster: RabbitCluster, name: str, echo: Callable[[str], None]) -> None:
    node = cluster.process(name)
    bin_dir = cluster.bin_dir
    if node.is_running():
        held = [
            f"{q['name']} ({q['messages']})"
            for q in _ctl_json(cluster, node, "list_queues", "--local", "name", "type", "messages")
            if q["type"] == "classic" and q["messages"]
        ]
        if held:
            raise NetworkError(
                f"{name} alone holds messages in classic queues {', '.join(held)} (topic "
                "subscribers connected to it): move those clients to another node and run "
                "apply again"
            )
        node.ctl(bin_dir, "shrink", node.node, tool="rabbitmq-queues", timeout=120)
        still = [q for q, members in cluster.queue_members(node).items() if node.node in members]
        if still:
            raise NetworkError(f"{name} still holds replicas of {', '.join(still)}; apply again")
        node.ctl(bin_dir, "stop_app")
    survivor = _running_node(cluster, {}, exclude=node.node)
    if node.node in cluster.members(survivor, "disk_nodes"):
        survivor.ctl(bin_dir, "forget_cluster_node", node.node)
    node.stop(bin_dir)
    shutil.rmtree(node.data_dir, ignore_errors=True)
    echo(f"  {name} left the cluster; its replicas are on {', '.join(cluster.members(survivor))}")


def _wait_not_quorum_critical(cluster: RabbitCluster, node: RabbitNode, timeout: float) -> None:
    """Wait until stopping ``node`` leaves every quorum queue a majority (a node just
    restarted may still be catching up)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            node.ctl(
                cluster.bin_dir, "check_if_node_is_quorum_critical", tool="rabbitmq-diagnostics"
            )
            return
        except NetworkError as exc:
            if time.monotonic() > deadline:
                raise NetworkError(
                    f"{node.node} stays quorum-critical after {timeout:.0f}s ({exc}); check "
                    "the other nodes with `msgbus network status`"
                ) from None
            time.sleep(1.0)


def _settled(cluster: RabbitCluster, timeout: float = 60.0) -> list[str]:
    """The cluster check, given a minute for members and replicas to come up."""
    deadline = time.monotonic() + timeout
    while True:
        problems = cluster.check()
        if not problems or time.monotonic() > deadline:
            return problems
        time.sleep(1.0)


def _authenticates(cluster: RabbitCluster, node: RabbitNode, user: str, password: str) -> bool:
    try:
        node.ctl(cluster.bin_dir, "authenticate_user", user, password)
    except NetworkError:
        return False
    return True


def _ctl_json(cluster: RabbitCluster, node: RabbitNode, *args: str) -> list[dict[str, Any]]:
    out = node.ctl(cluster.bin_dir, *args, "--formatter", "json")
    rows: list[dict[str, Any]] = json.loads(out or "[]")
    return rows


def _running_node(
    cluster: RabbitCluster, extra: dict[str, Broker], *, exclude: str = ""
) -> RabbitNode:
    """A running node to ask: one of the topology's, else one of ``extra``."""
    brokers = [*cluster.topology.brokers, *extra.values()]
    for broker in brokers:
        node = RabbitNode(cluster.topology, broker, cluster.state_dir / broker.name)
        if node.node != exclude and node.is_running():
            return node
    raise NetworkError(
        f"no node of {cluster.topology.name} runs under {cluster.state_dir}: start it with "
        "`msgbus network up`"
    )


def _saved_brokers(state_dir: Path) -> dict[str, Broker]:
    """The nodes the cluster was last brought up or changed with. Read broker by broker:
    mid-apply the saved cluster may have an even number of nodes, which a topology
    file may not."""
    path = state_dir / "topology.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise NetworkError(f"{path} is unreadable ({exc}); remove it") from None
    brokers = [Broker.model_validate(b) for b in data.get("brokers", [])]
    return {b.name: b for b in brokers}


def _config_diff(old: str, new: str) -> list[str]:
    """The settings whose value differs, by key (comment lines do not count)."""

    def settings(text: str) -> dict[str, str]:
        pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
        return {k.strip(): v.strip() for k, v in pairs if not k.lstrip().startswith("#")}

    a, b = settings(old), settings(new)
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
