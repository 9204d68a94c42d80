"""docker-compose.yml is valid (Debian's docker-compose 1.29 validates without an engine) and agrees
with the component registry (agents/system.py): every component has a worker service and a scrape
target, names and metric ports agree everywhere, every worker's state is on a volume of its own that its
user can write, and the image installs the wheel its build stage makes. No engine runs here, so these read
the files; the installed wheel itself is exercised by tests/integration/test_installed_wheel.py."""

from __future__ import annotations

import re
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
        home = service["environment"]["OPENGYM_HOME"]
        assert home in _mounts(service).values(), f"{component}: its OPENGYM_HOME ({home}) is a volume"


def _mounts(service: dict) -> dict[str, str]:
    """{volume: where it is mounted} for a service's named volumes."""
    found = {}
    for v in service.get("volumes", []):
        source, target = (v["source"], v["target"]) if isinstance(v, dict) else str(v).split(":")[:2]
        found[source] = target
    return found


def test_every_worker_keeps_its_tables_on_a_volume_of_its_own(compose):
    volumes = [_mounts(compose["services"][c]) for c in COMPONENTS]
    names = [next(iter(v)) for v in volumes]
    assert all(len(v) == 1 for v in volumes) and len(set(names)) == len(COMPONENTS), \
        "two workers must never share a state directory (docs/deployment.md)"


def test_the_registry_can_write_its_volume(compose):
    """Apicurio's image runs as uid 1001 (group 0) and has no /var/lib/apicurio, so its fresh volume would be
    root's: a job hands it to 1001 before the registry starts, and the H2 file is on it."""
    registry = compose["services"]["registry"]
    (where,) = _mounts(registry).values()
    storage = compose["services"]["registry-storage"]
    assert _mounts(storage) == {"registry-data": where}
    assert storage["user"] == "0" and storage["command"] == ["chown", "-R", "1001:0", where]
    assert registry["depends_on"]["registry-storage"]["condition"] == "service_completed_successfully"
    assert registry["environment"]["APICURIO_DATASOURCE_URL"].startswith(f"jdbc:h2:file:{where}/")


def test_the_workers_can_write_their_volumes(compose):
    """A fresh named volume takes the owner of the image's directory it is mounted on: the image creates
    OPENGYM_HOME and /targets (where init writes Prometheus' targets) for the user it runs as."""
    runtime = (ROOT / "Dockerfile").read_text().split("\nFROM ")[-1]
    user = re.search(r"^USER (\S+)$", runtime, re.M).group(1)
    made = set(re.search(r"mkdir -p ([^&\n]+)", runtime).group(1).split())
    owned = re.search(rf"chown {user}:{user} ([^&\n]+)", runtime)
    assert owned, f"the image gives its directories to its user {user}"
    wanted = {compose["services"][c]["environment"]["OPENGYM_HOME"] for c in COMPONENTS}
    wanted |= set(_mounts(compose["services"]["init"]).values())
    assert wanted <= made & set(owned.group(1).split()), f"{sorted(wanted)}: made {made}, owned {owned.group(1)}"


def test_the_image_installs_the_wheel_its_build_stage_makes():
    stages = [stage.strip().splitlines() for stage in (ROOT / "Dockerfile").read_text().split("\nFROM ")[1:]]
    *builders, runtime = stages
    assert any("pip wheel" in line for stage in builders for line in stage), "a build stage makes the wheel"
    copies = [line for line in runtime if line.startswith("COPY")]
    assert copies and all(line.startswith("COPY --from=") for line in copies), \
        "the runtime stage takes only the wheel, no source"
    assert any("pip install" in line and ".whl" in line for line in runtime)
    text = "\n".join(runtime)
    assert "OPENGYM_HOME=/var/lib/opengym" in text and "USER 10001" in text


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
    for service in (*COMPONENTS, "prometheus"):
        depends = compose["services"][service]["depends_on"]
        assert depends["init"]["condition"] == "service_completed_successfully", service


def test_the_broker_does_not_auto_create_topics(compose):
    assert compose["services"]["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_prometheus_loads_the_rules_it_is_given(compose):
    volumes = compose["services"]["prometheus"]["volumes"]
    sources = {str(v["source"] if isinstance(v, dict) else v).split(":")[0] for v in volumes}
    assert any(s.endswith("monitoring/prometheus/alerts.yml") for s in sources)
