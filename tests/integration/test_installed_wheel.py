"""The wheel, installed: built from the repository's files, pip-installed into a fresh venv (its dependencies
from PyPI), and run from a directory outside the repository, where a team keeps its own top-level ``agents``
and ``topics`` packages on the path. From there the installed ``opengym`` creates its topics, registers every
subject with its configured level, round-trips a BookClassRequested, and runs every component's worker and
the observer until each is ready. Nothing here imports the checkout into the installed processes: they see
only the venv and the team's directory.

One wheel build and one install per session (module fixture); its durations are printed (``-s``) and kept in
the report's captured output."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from opengym.agents.system import SYSTEM
from opengym_streams.codec import registry_client
from opengym_streams.kafka import delete_topics_with_prefix
from opengym_streams.ui import free_port
from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]
PYTHON = shutil.which("python3.11") or sys.executable  # a venv of the suite's venv is one of its base Python

pytestmark = pytest.mark.timeout(900)  # the first test pays for the build and the install (~2 min here)

TEAM_AGENTS = '"""A team\'s own agents package, which has nothing to do with OpenGym\'s."""\nOWNER = "team"\n'
TEAM_TOPICS = '"""A team\'s own topic catalog."""\nCATALOG = "the team\'s, not OpenGym\'s"\n'


@dataclass
class Installed:
    venv: Path
    team: Path
    """The directory the commands run in: outside the repository, with the team's own packages."""
    env: dict[str, str]
    timings: dict[str, float] = field(default_factory=dict)
    registered: str = ""
    """What the installed ``opengym schemas register`` printed."""

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)

    def run(self, *argv: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([self.bin("opengym"), *argv], cwd=self.team, env={**self.env, **env},
                              capture_output=True, text=True, timeout=timeout)

    def python(self, code: str) -> subprocess.CompletedProcess:
        return subprocess.run([self.bin("python"), "-c", code], cwd=self.team, env=self.env, capture_output=True,
                              text=True, timeout=60)


def _dockerignore() -> list[tuple[bool, re.Pattern]]:
    """.dockerignore as (re-include?, pattern): Go's filepath.Match (``*`` stops at ``/``) plus ``**``."""
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keep, line = line.startswith("!"), line.lstrip("!").strip("/")
        parts = re.split(r"(\*\*/?|\*|\?)", line)
        regex = "".join({"**/": "(.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(x, re.escape(x)) for x in parts)
        rules.append((keep, re.compile(regex + "$")))
    return rules


def _in_build_context(rel: str, rules) -> bool:
    """Whether Docker sends the file: the last rule matching it or one of its parent directories decides."""
    parts = rel.split("/")
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    included = True
    for keep, pattern in rules:
        if any(pattern.match(c) for c in candidates):
            included = keep
    return included


def _build_context(dest: Path) -> Path:
    """The Dockerfile's build context: the files git tracks (and new ones it would) less what .dockerignore
    leaves out. The wheel built from it is the one the image installs, and nothing stale (build/, a venv)
    gets in."""
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, check=True).stdout.decode().split("\0")
    rules = _dockerignore()
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file() and _in_build_context(rel, rules):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def _timed(timings: dict[str, float], what: str, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    timings[what] = time.monotonic() - started
    assert done.returncode == 0, f"{what} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def installed(stack, tmp_path_factory) -> Installed:
    base = tmp_path_factory.mktemp("installed-wheel")
    assert not base.resolve().is_relative_to(ROOT.resolve())
    timings: dict[str, float] = {}
    source = _build_context(base / "context")
    assert not (source / "tests").exists() and (source / "docs" / "runbook.md").is_file()
    _timed(timings, "build the wheel", [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                                        str(base / "dist"), str(source)], timeout=600)
    (wheel,) = (base / "dist").glob("opengym_streams-*.whl")
    venv = base / "venv"
    _timed(timings, "create the venv", [PYTHON, "-m", "venv", "--without-pip", str(venv)], timeout=120)
    # The suite's own (newer) pip installs into the fresh venv: the same result as the venv's bundled pip, in
    # about half the time (its resolver fetches the index pages of ~50 dependencies faster).
    _timed(timings, "pip install the wheel", [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
                                              "install", "-q", str(wheel)], timeout=900)

    team = base / "team"
    for package, text in (("agents", TEAM_AGENTS), ("topics", TEAM_TOPICS)):
        (team / package).mkdir(parents=True)
        (team / package / "__init__.py").write_text(text)
    home = base / "home"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("OPENGYM_") and k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", PYTHONPATH=str(team),
               OPENGYM_TOPIC_PREFIX=f"w{uuid.uuid4().hex[:10]}.", OPENGYM_HOME=str(home))
    for name in ("OPENGYM_BOOTSTRAP", "OPENGYM_SCHEMA_REGISTRY"):  # the stack the suite runs against
        if name in os.environ:
            env[name] = os.environ[name]
    print("installed wheel: " + ", ".join(f"{what} {seconds:.0f} s" for what, seconds in timings.items()))
    installed = Installed(venv, team, env, timings)
    yield installed
    for bulky in (venv, source, base / "dist"):  # ~150 MB; the team directory and its logs stay for a post-mortem
        shutil.rmtree(bulky, ignore_errors=True)
    delete_topics_with_prefix(env["OPENGYM_TOPIC_PREFIX"])
    client = registry_client()  # by name: Apicurio lists only the first 1000 subjects
    for subject in [line.split()[1] for line in installed.registered.splitlines() if line.startswith("REGISTERED")]:
        try:
            client.delete_subject(subject)
            client.delete_subject(subject, permanent=True)
        except Exception:  # best effort: a leftover subject harms nobody
            pass


@pytest.fixture(scope="module")
def deployed(installed) -> Installed:
    """Topics created and every subject registered, by the installed commands (as the compose init job does)."""
    created = installed.run("topics", "create")
    assert created.returncode == 0, created.stdout + created.stderr
    registered = installed.run("schemas", "register")
    assert registered.returncode == 0, registered.stdout + registered.stderr
    installed.registered = registered.stdout
    return installed


def test_the_installed_code_runs_from_the_venv_not_the_checkout(installed):
    found = installed.python("import opengym_streams, opengym.agents, opengym.schemas; "
                             "print(opengym_streams.__file__); print(opengym.agents.__file__); "
                             "print(opengym.schemas.__file__)")
    assert found.returncode == 0, found.stderr
    site = installed.venv / "lib"
    for path in found.stdout.split():
        assert Path(path).is_relative_to(site), f"{path} is not the installed copy under {site}"


def test_installed_wheel_creates_topics_and_registers_every_subject_with_its_level(deployed):
    prefix = deployed.env["OPENGYM_TOPIC_PREFIX"]
    again = deployed.run("topics", "create")
    assert again.returncode == 0 and f"0 created, {len(SYSTEM.topics.all)} already existed" in again.stdout, \
        again.stdout + again.stderr
    lines = [line.split() for line in deployed.registered.splitlines() if line.startswith("REGISTERED")]
    assert lines, deployed.registered
    assert "levels from " in deployed.registered and "site-packages/opengym/schemas/compatibility.json" in \
        deployed.registered, "the levels come from the installed package data"
    client = registry_client()
    for parts in lines:
        subject, level = parts[1], parts[-1]
        assert subject.startswith(prefix)
        assert level == "FULL_TRANSITIVE", f"{subject}: schemas/compatibility.json says FULL_TRANSITIVE for all"
        assert client.get_compatibility(subject) == level, f"{subject}: the registry does not enforce {level}"
    subjects = {parts[1] for parts in lines}
    expected_topics = {t.name for t in SYSTEM.topics.all if t.events}
    assert {s[len(prefix):].split("-opengym.")[0] for s in subjects} == expected_topics, \
        "every topic that carries events has its subjects registered"


def test_installed_wheel_round_trips_a_book_class_request(deployed):
    booking = f"b-{uuid.uuid4().hex[:8]}"
    sent = deployed.run("produce", json.dumps({"type": "BookClassRequested", "booking_id": booking,
                                               "member_id": "m-1", "class_id": "c-1"}))
    assert sent.returncode == 0 and "sent 1, rejected 0" in sent.stderr, sent.stdout + sent.stderr
    read = deployed.run("consume", "opengym.reservation.commands")
    assert read.returncode == 0, read.stderr
    events = [json.loads(line) for line in read.stdout.splitlines()]
    assert [(e["type"], e["booking_id"], e["correlation_id"]) for e in events] == \
        [("BookClassRequested", booking, booking)]


def test_installed_wheel_checks_its_catalog_and_models_and_writes_docs_where_it_runs(installed):
    checked = installed.run("catalog", "check")
    assert checked.returncode == 0 and "catalog OK" in checked.stdout, checked.stdout + checked.stderr
    models = installed.run("contracts", "check")
    assert models.returncode == 0, models.stdout + models.stderr
    written = installed.run("catalog", "docs")
    assert written.returncode == 0, written.stderr
    assert (installed.team / "docs" / "catalog.md").read_text().startswith("#"), written.stdout
    assert not list(installed.venv.glob("lib/python*/site-packages/docs")), "nothing is written into the venv"


def test_schemas_register_and_check_without_contracts_fail_saying_where_they_looked(installed):
    empty = installed.team / "no-schemas"
    empty.mkdir(exist_ok=True)
    for action in ("register", "check"):
        done = installed.run("schemas", action, "--schemas", str(empty))
        assert done.returncode == 1, f"{action}: {done.stdout}{done.stderr}"
        assert f"no contracts under {empty}" in done.stderr, done.stderr


def test_a_teams_own_agents_and_topics_packages_live_beside_the_installed_copy(installed):
    found = installed.python(
        "import agents, topics, opengym.agents, opengym.topics\n"
        "from opengym_streams.system import load\n"
        "print(agents.OWNER, topics.CATALOG, sep='|')\n"
        "print(agents.__file__, topics.__file__, opengym.agents.__file__, opengym.topics.__file__, sep='|')\n"
        "print(load().name, len(load().topics.all), sep='|')\n")
    assert found.returncode == 0, found.stderr
    owner, paths, system = found.stdout.splitlines()
    assert owner == "team|the team's, not OpenGym's"
    team_agents, team_topics, ours, our_topics = (Path(p) for p in paths.split("|"))
    assert team_agents.is_relative_to(installed.team) and team_topics.is_relative_to(installed.team)
    assert ours.is_relative_to(installed.venv) and our_topics.is_relative_to(installed.venv)
    assert system == f"opengym|{len(SYSTEM.topics.all)}"


def test_every_installed_worker_and_the_observer_start_until_ready(deployed):
    """Every command above and every worker here runs with the team's own ``agents`` and ``topics`` first on
    the path: an import of either by the installed code would get the team's and fail."""
    logs = deployed.team / "logs"
    logs.mkdir(exist_ok=True)
    ui_port = free_port()
    env = {**deployed.env, "OPENGYM_METRICS_PORT": "0", "OPENGYM_STORE": "rocksdict", "OPENGYM_UI_PORT": str(ui_port)}
    procs: dict[str, subprocess.Popen] = {}

    def log(name: str) -> str:
        return (logs / f"{name}.log").read_text(errors="replace")

    def ready() -> list[str]:
        return [name for name in procs if "[^Worker]: Ready" in log(name)]

    def state() -> str:
        exited = {n: p.returncode for n, p in procs.items() if p.poll() is not None}
        tails = " | ".join(f"{n}: {log(n)[-600:]}" for n in procs if n not in ready())
        return f"ready {ready()}, exited {exited}; not ready: {tails}"

    try:
        for name in SYSTEM.names:
            procs[name] = subprocess.Popen([deployed.bin("opengym"), "worker", name], cwd=deployed.team, env=env,
                                           stdout=open(logs / f"{name}.log", "wb"), stderr=subprocess.STDOUT,
                                           start_new_session=True)
        started = time.monotonic()
        wait_for(lambda: len(ready()) == len(procs) or any(p.poll() is not None for p in procs.values()), 300,
                 "every installed worker to log that it is ready", seen=state)
        assert all(p.poll() is None for p in procs.values()), state()
        deployed.timings["start every worker"] = time.monotonic() - started
        print(f"installed workers ready after {deployed.timings['start every worker']:.0f} s")

        home = Path(env["OPENGYM_HOME"])
        prefix = env["OPENGYM_TOPIC_PREFIX"]
        for name in SYSTEM.names:
            datadir = home / "faust" / f"{prefix}opengym-{name}"
            assert datadir.is_dir() and any(datadir.iterdir()), f"{name} keeps its tables under OPENGYM_HOME"

        overview = urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/", timeout=10).read().decode()
        assert "The diagrams cannot render" in overview, "the wheel ships no Mermaid bundle, and the UI says so"
        assert '<pre class="mermaid">' in overview, "the diagrams show as their source"
        runbook = urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/runbook", timeout=10).read().decode()
        assert "OpenGymNestedTimeouts" in runbook, "the runbook ships in the wheel"
        css = urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/static/ui.css", timeout=10)
        assert css.status == 200
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
