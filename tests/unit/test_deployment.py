"""docker-compose.yml is valid (Debian's docker-compose 1.29 validates without an engine) and agrees
with the component registry (agents/system.py): every component has a worker service and a scrape
target, names and metric ports agree everywhere."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from opengym.agents.system import SYSTEM

COMPONENTS = SYSTEM.names
METRIC_PORTS = {c.name: c.metrics_port for c in SYSTEM.components}

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict:
    tool = shutil.which("docker-compose")
    assert tool, "docker-compose is not installed (Debian: see .ci/debian-packages)"
    result = subprocess.run([tool, "-f", str(ROOT / "docker-compose.yml"), "config"], capture_output=True,
                            text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_has_the_infrastructure(compose):
    assert {"kafka", "registry", "init", "prometheus", "alertmanager", "grafana"} <= set(compose["services"])


def test_every_component_has_a_worker_service_running_it(compose):
    for component in COMPONENTS:
        service = compose["services"].get(component)
        assert service is not None, f"docker-compose.yml: no service for component {component} (agents/system.py)"
        assert service["command"] == ["worker", component]
        assert service["healthcheck"]["test"], component
        targets = [v["target"] if isinstance(v, dict) else str(v).split(":")[1] for v in service.get("volumes", [])]
        assert "/app/state" in targets, f"{component} keeps its state dir on a volume"


def test_metric_ports_agree_between_the_registry_compose_and_prometheus(compose):
    from opengym_streams.commands.deploy import scrape_targets

    scrape = yaml.safe_load((ROOT / "monitoring" / "prometheus" / "prometheus.yml").read_text())
    (job,) = [job for job in scrape["scrape_configs"] if job["job_name"] == "opengym"]
    assert job["file_sd_configs"] == [{"files": ["/etc/prometheus/targets/*.json"]}], \
        "monitoring/prometheus/prometheus.yml: the targets come from the registry, written by the init job"
    targets = {t["labels"]["component"]: t["targets"][0] for t in scrape_targets(SYSTEM)}
    assert set(targets) == set(COMPONENTS)
    for component, port in METRIC_PORTS.items():
        assert compose["services"][component]["environment"]["OPENGYM_METRICS_PORT"] == str(port), \
            f"docker-compose.yml: {component}'s OPENGYM_METRICS_PORT is not {port} (agents/system.py)"
        assert targets[component] == f"{component}:{port}"
    init = " ".join(compose["services"]["init"]["entrypoint"])
    assert "opengym deploy targets --out /targets/" in init, "docker-compose.yml: init writes Prometheus' targets"


def test_prometheus_accepts_its_configuration(tmp_path):
    import shutil as sh

    promtool = sh.which("promtool")
    assert promtool, "promtool is not installed (Debian: prometheus, see .ci/debian-packages)"
    for name in ("prometheus.yml", "alerts.yml"):
        sh.copy(ROOT / "monitoring" / "prometheus" / name, tmp_path / name)
    result = subprocess.run([promtool, "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_workers_wait_for_topics_and_schemas(compose):
    init = compose["services"]["init"]
    assert "opengym topics create" in " ".join(init["entrypoint"])
    assert "opengym schemas register" in " ".join(init["entrypoint"])
    for component in COMPONENTS:
        depends = compose["services"][component]["depends_on"]
        assert depends["init"]["condition"] == "service_completed_successfully"


def test_the_broker_does_not_auto_create_topics(compose):
    assert compose["services"]["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_prometheus_loads_the_rules_it_is_given(compose):
    volumes = compose["services"]["prometheus"]["volumes"]
    sources = {str(v["source"] if isinstance(v, dict) else v).split(":")[0] for v in volumes}
    assert any(s.endswith("monitoring/prometheus/alerts.yml") for s in sources)
