"""Pages reach the owner: every anomaly the catalog makes possible carries the component that owns the
process at fault, the alert it fires keeps that owner, and Alertmanager (the real amtool) routes it to
that owner's receiver."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from opengym.agents.system import SYSTEM
from opengym_streams.monitoring.metrics import anomaly_series
from opengym_streams.ui.links import alerts_by_kind

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "monitoring" / "prometheus" / "alerts.yml"
ALERTMANAGER = ROOT / "monitoring" / "alertmanager" / "alertmanager.yml"


def severity_of(alert: str) -> str:
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    return next(r["labels"]["severity"] for r in rules if r["alert"] == alert)


def route(**labels: str) -> str:
    amtool = shutil.which("amtool")
    assert amtool, "amtool is not installed (Debian: prometheus-alertmanager, see .ci/debian-packages)"
    result = subprocess.run([amtool, "config", "routes", "test", "--config.file", str(ALERTMANAGER),
                             *(f"{k}={v}" for k, v in labels.items())], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_owner_of_each_process_at_fault_follows_the_catalog():
    owners = {(process, kind): set() for _, process, kind, _ in anomaly_series(SYSTEM.catalog)}
    for _, process, kind, owner in anomaly_series(SYSTEM.catalog):
        owners[(process, kind)].add(owner)
    assert owners[("InstrumentConsumeProcess", "NESTED_TIMEOUT")] == {"entitlement"}
    assert owners[("NotificationProcess", "DOWNSTREAM_NOT_STARTED")] == {"notifications"}
    assert owners[("AttendancePendingProcess", "DOWNSTREAM_NOT_COMPLETED")] == {"attendance"}
    assert owners[("BillingRecordProcess", "DOWNSTREAM_NOT_STARTED")] == {"tenant-billing"}
    # Nobody owns the chain: a stall is the business of the producer of the hop that did not come.
    assert owners[("PartnerVisitSettlement", "CHAIN_STALLED")] == {"platform-billing", "finance"}


@pytest.mark.parametrize("business_transaction, process, kind, owner", anomaly_series(SYSTEM.catalog),
                         ids=lambda v: str(v))
def test_each_process_alert_reaches_its_owner(business_transaction, process, kind, owner):
    alert = alerts_by_kind(RULES)[kind]
    severity = severity_of(alert)
    receiver = route(alertname=alert, severity=severity, owner=owner, business_transaction=business_transaction,
                     process=process)
    assert receiver == f"{owner}-{'oncall' if severity == 'page' else 'tickets'}"


def test_every_anomaly_kind_fires_an_alert_the_ui_can_link_to():
    kinds = {kind for _, _, kind, _ in anomaly_series(SYSTEM.catalog)}
    assert kinds <= set(alerts_by_kind(RULES)), kinds - set(alerts_by_kind(RULES))
