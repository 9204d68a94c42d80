"""Alert rules, their promtool unit tests, Alertmanager routing and the dashboard, checked with the real
tools (Debian's prometheus and prometheus-alertmanager packages)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from opengym_streams.monitoring.metrics import metric_names

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "monitoring"
RULES = MONITORING / "prometheus" / "alerts.yml"
RUNBOOK = ROOT / "docs" / "runbook.md"
PROMETHEUS_BUILTINS = {"up"}
PROMQL_WORDS = {"sum", "max", "min", "by", "on", "rate", "increase", "time", "and", "unless", "or",
                "histogram_quantile", "le", "without", "avg", "count", "absent", "bool", "ignoring"}


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not installed (Debian: see .ci/debian-packages)"
    return path


def rules():
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def metrics_in(expr: str) -> set[str]:
    without_labels = re.sub(r"\{[^}]*\}", "", expr)
    without_ranges = re.sub(r"\[[^\]]*\]", "", without_labels)
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_ranges))
    by_groups = set()
    for group in re.findall(r"(?:by|on|without|ignoring)\s*\(([^)]*)\)", without_ranges):
        by_groups.update(w.strip() for w in group.split(","))
    return {w for w in words - PROMQL_WORDS - by_groups if not w.isdigit()}


def test_promtool_accepts_the_rules():
    result = subprocess.run([tool("promtool"), "check", "rules", str(RULES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_passes_its_promtool_unit_tests():
    result = subprocess.run([tool("promtool"), "test", "rules", "alerts_test.yml"],
                            cwd=RULES.parent, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_promtool_unit_test():
    tests = (RULES.parent / "alerts_test.yml").read_text()
    untested = [r["alert"] for r in rules() if f"alertname: {r['alert']}" not in tests]
    assert untested == []


def test_every_metric_a_rule_names_is_one_the_code_exports():
    exported = metric_names() | PROMETHEUS_BUILTINS
    unknown = {(r["alert"], m) for r in rules() for m in metrics_in(r["expr"]) if m not in exported}
    assert unknown == set()


def test_the_metric_check_would_catch_a_typo():
    assert metrics_in('sum by (kind) (increase(opengym_anomalys_total{kind="X"}[5m])) > 0') == {
        "opengym_anomalys_total"}


def test_every_alert_routes_and_links_to_its_runbook_section():
    runbook = RUNBOOK.read_text().lower()
    for rule in rules():
        assert rule["labels"]["severity"] in {"page", "ticket"}, rule["alert"]
        assert rule["labels"]["owner"], rule["alert"]
        assert "team" not in rule["labels"], f"{rule['alert']}: routing is by owner, not a fixed team"
        assert {"summary", "description", "runbook_url"} <= set(rule["annotations"]), rule["alert"]
        anchor = rule["annotations"]["runbook_url"].split("#", 1)[1]
        assert f"## {rule['alert'].lower()}" in runbook, f"docs/runbook.md has no section {anchor}"


def test_prometheus_accepts_the_deployment_config():
    config = MONITORING / "prometheus" / "prometheus.yml"
    result = subprocess.run([tool("promtool"), "check", "config", str(config)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_alertmanager_accepts_the_routing_example():
    result = subprocess.run([tool("amtool"), "check-config", str(MONITORING / "alertmanager" / "alertmanager.yml")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("labels, receiver", [
    ("alertname=OpenGymNestedTimeouts severity=page owner=entitlement", "entitlement-oncall"),
    ("alertname=OpenGymChainStalled severity=page owner=finance", "finance-oncall"),
    ("alertname=OpenGymComponentDown severity=page owner=notifications", "notifications-oncall"),
    ("alertname=OpenGymDeadLettersGrowing severity=ticket owner=finance", "finance-tickets"),
    ("alertname=OpenGymComponentDown severity=page", "platform-oncall"),
])
def test_alertmanager_routes_each_alert_to_its_owner(labels, receiver):
    result = subprocess.run(
        [tool("amtool"), "config", "routes", "test", "--config.file",
         str(MONITORING / "alertmanager" / "alertmanager.yml"), *labels.split()],
        capture_output=True, text=True)
    assert result.stdout.strip() == receiver, result.stdout + result.stderr


def test_the_dashboard_only_queries_exported_metrics():
    dashboard = json.loads((MONITORING / "grafana" / "dashboards" / "opengym.json").read_text())
    exported = metric_names() | PROMETHEUS_BUILTINS
    titles = {p["title"] for p in dashboard["panels"]}
    for wanted in ("Transactions in flight", "Nested round trip (p50 / p95 / p99)",
                   "Anomalies by kind and process (per 5 min)", "Dead letters by component (per 5 min)",
                   "Consumer lag by component"):
        assert wanted in titles
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            unknown = {m for m in metrics_in(target["expr"]) if m not in exported}
            unknown -= {"opengym_nested_round_trip_seconds_bucket", "opengym_handler_seconds_bucket"} & exported
            assert not unknown, f"panel {panel['title']!r} queries {unknown}"
