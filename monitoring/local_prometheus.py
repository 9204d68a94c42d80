"""A real Prometheus (Debian's package) scraping local workers with OpenGym's alert rules.

Used by the suite's alert test and handy by hand: ``python -m monitoring.local_prometheus`` scrapes the
default metric ports and serves http://127.0.0.1:9090 until interrupted.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

RULES = Path(__file__).resolve().parent / "prometheus" / "alerts.yml"


def config_text(targets: dict[str, str], interval: str = "1s") -> str:
    """Prometheus YAML scraping ``{component: host:port}``; rules evaluated every ``interval``."""
    lines = [
        "global:",
        f"  scrape_interval: {interval}",
        f"  evaluation_interval: {interval}",
        "rule_files:",
        "  - alerts.yml",
        "scrape_configs:",
        "  - job_name: opengym",
        "    honor_labels: true",
        "    static_configs:",
    ]
    for component, target in sorted(targets.items()):
        lines += [f'      - targets: ["{target}"]', f"        labels: {{component: {component}}}"]
    return "\n".join(lines) + "\n"


def _unix(stamp: str) -> float:
    """Prometheus' RFC 3339 timestamps carry nanoseconds; Python parses at most microseconds."""
    from datetime import datetime

    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z", stamp or "")
    if not match or match.group(1).startswith("0001"):
        return 0.0
    whole = datetime.fromisoformat(match.group(1) + "+00:00").timestamp()
    return whole + float("0." + (match.group(2) or "0"))


@dataclass
class LocalPrometheus:
    workdir: Path
    targets: dict[str, str]
    port: int = 9090
    interval: str = "1s"
    process: subprocess.Popen | None = None

    @staticmethod
    def rules_path() -> Path:
        return RULES

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> "LocalPrometheus":
        binary = shutil.which("prometheus")
        if not binary:
            raise RuntimeError("prometheus is not installed (Debian: apt-get install prometheus)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        shutil.copy(RULES, self.workdir / "alerts.yml")
        (self.workdir / "prometheus.yml").write_text(config_text(self.targets, self.interval))
        log = open(self.workdir / "prometheus.log", "wb")
        self.process = subprocess.Popen(
            [binary, f"--config.file={self.workdir / 'prometheus.yml'}",
             f"--storage.tsdb.path={self.workdir / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited: {(self.workdir / 'prometheus.log').read_text()[-500:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"prometheus did not get ready in {timeout}s")

    def api(self, path: str) -> dict:
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}", timeout=5) as resp:
            return json.loads(resp.read())["data"]

    def alerts(self, state: str | None = "firing") -> list[dict]:
        return [a for a in self.api("alerts")["alerts"] if state is None or a["state"] == state]

    def targets_up(self) -> dict[str, bool]:
        return {t["labels"]["component"]: t["health"] == "up" for t in self.api("targets")["activeTargets"]}

    def last_rule_evaluation(self) -> float:
        """Unix time of the oldest 'last evaluation' over all rule groups (0 before the first one)."""
        times = [_unix(group.get("lastEvaluation", "")) for group in self.api("rules")["groups"]]
        return min(times) if times else 0.0

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()


if __name__ == "__main__":
    import tempfile

    from opengym_streams.system import load

    prom = LocalPrometheus(Path(tempfile.mkdtemp(prefix="opengym-prometheus-")),
                           {c.name: f"127.0.0.1:{c.metrics_port}" for c in load().components}, interval="5s").start()
    print(f"Prometheus with OpenGym's rules on {prom.url} (data in {prom.workdir}); Ctrl-C stops it")
    try:
        prom.process.wait()
    except KeyboardInterrupt:
        prom.stop()
