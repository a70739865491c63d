"""deploy/prometheus and deploy/grafana use the metric names the components export."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from msgbus.cli.reference import metric_registries
from msgbus.metrics import MetricsRegistry

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
_NAME = re.compile(r"\bmsgbus_[a-z_]+\b")
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def _exported(registry: MetricsRegistry) -> set[str]:
    names = set()
    for family in registry.registry.collect():
        for suffix in _SUFFIXES.get(family.type, ("",)):
            names.add(family.name + suffix)
    return names


@pytest.fixture(scope="module")
def exported() -> set[str]:
    # The same registries the handbook's metrics reference lists.
    return set().union(*(_exported(r) for r in metric_registries().values()))


def _grafana_exprs() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "msgbus-backbone.json").read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((DEPLOY / "prometheus" / "msgbus-rules.yml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_grafana_queries_name_exported_metrics(exported: set[str]) -> None:
    used = {name for expr in _grafana_exprs() for name in _NAME.findall(expr)}
    assert used, "the dashboard queries no msgbus metric"
    assert used <= exported, f"unknown metrics: {sorted(used - exported)}"
    # Every component's main counters are on the dashboard.
    for must in ("msgbus_publisher_confirmed_total", "msgbus_consumer_stored_total",
                 "msgbus_consumer_lag_seconds_bucket", "msgbus_publisher_spool_messages",
                 "msgbus_broker_queue_depth", "msgbus_audit_missing_messages",
                 "msgbus_audit_stale_series"):  # fmt: skip
        assert must in used


def test_alert_rules_name_exported_metrics(exported: set[str]) -> None:
    rules = _rules()
    used = {name for rule in rules for name in _NAME.findall(rule["expr"])}
    assert used <= exported, f"unknown metrics: {sorted(used - exported)}"
    for rule in rules:
        assert rule["alert"].startswith("Msgbus")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_grafana_panels_do_not_overlap() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "msgbus-backbone.json").read_text())
    taken: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        g = panel["gridPos"]
        cells = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not cells & taken, f"panel {panel['title']!r} overlaps another"
        assert g["x"] + g["w"] <= 24
        taken |= cells


def test_prometheus_scrapes_every_component_and_loads_the_rules() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert {"msgbus-broker", "msgbus-consumer", "msgbus-publisher"} <= set(jobs)
    assert config["rule_files"] == ["msgbus-rules.yml"]
    for job in jobs.values():
        for sd in job.get("file_sd_configs", []):
            for name in sd["files"]:
                targets = yaml.safe_load((DEPLOY / "prometheus" / name).read_text())
                assert all(":" in t for group in targets for t in group["targets"])
