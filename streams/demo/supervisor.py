"""Runs each component as its own OS process (``opengym worker <component>``) and stops them again."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from opengym_streams.system import System, load


def worker_names(system: System | None = None) -> tuple[str, ...]:
    """The system's components (from its registry), each a Faust app of its own; the observer apart."""
    return tuple(c.name for c in (system or load()).workers)


def observer_name(system: System | None = None) -> str | None:
    spec = (system or load()).observer
    return spec.name if spec is not None else None


def __getattr__(name: str):
    # COMPONENTS and OBSERVER of the configured system, read when asked (not on import: `opengym --system`
    # chooses the system after the command modules are imported).
    if name == "COMPONENTS":
        return worker_names()
    if name == "OBSERVER":
        return observer_name()
    raise AttributeError(name)

RECOVERED = "Worker ready"
"""Faust's recovery service logs this once the tables are restored and the streams have been
sought to their committed offsets. Events sent before that point were seen to be lost or processed
twice (see docs/notes/demo.md), so the driver waits for it."""


REJOINED = "Joined group"
"""aiokafka logs this at every (re)join of the consumer group; a recovery follows."""


def group_id(component: str, topic_prefix: str, system: System | None = None) -> str:
    """The consumer group of a component's Faust app: its app id (see ``streams.runtime.make_app``)."""
    return topic_prefix + (system or load()).topics.app_id(component)


@functools.lru_cache(maxsize=None)
def _admin_for(bootstrap: str):
    from opengym_streams.kafka import admin

    return admin()


def _admin():
    from opengym_streams.settings import get_settings

    return _admin_for(get_settings().bootstrap)


def group_members(group: str, timeout: float = 5.0) -> list | None:
    """Members of a STABLE consumer group; None while it is not stable."""
    from confluent_kafka import ConsumerGroupState

    try:
        description = _admin().describe_consumer_groups([group])[group].result(timeout)
    except Exception:  # a group the coordinator does not know yet, or a coordinator moving
        return None
    if description.state != ConsumerGroupState.STABLE:
        return None
    return list(description.members)


class WorkerFailed(RuntimeError):
    """A worker exited or did not get ready; the message ends with the tail of its log."""


def observer_available(env: dict[str, str] | None = None) -> bool:
    """True when the correlation observer exists in this checkout and imports."""
    return observer_status(env)[0]


def observer_status(env: dict[str, str] | None = None, timeout: float = 60.0) -> tuple[bool, str]:
    """Whether the system's observer exists and builds (checked in a child process, as its worker would
    import it); with the reason when it does not."""
    import importlib.util

    spec = load().observer
    if spec is None:
        return False, "the system declares no observer"
    module = spec.module
    if importlib.util.find_spec(module) is None:
        return False, f"{module} is not installed"
    try:
        check = subprocess.run([sys.executable, "-c", f"import {module}; {module}.build()"], capture_output=True,
                               text=True, timeout=timeout, env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired:
        return False, f"building {module} took over {timeout:.0f}s"
    if check.returncode != 0:
        last = (check.stderr.strip().splitlines() or ["?"])[-1]
        return False, f"{module} does not build: {last}"
    return True, f"{module} builds"


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


@dataclass
class Worker:
    component: str
    log_path: Path
    env: dict[str, str]
    cwd: Path
    process: subprocess.Popen | None = None
    starts: int = 0
    _log_offset: int = 0

    @property
    def argv(self) -> list[str]:
        return [sys.executable, "-m", "opengym_streams.cli", "worker", self.component]

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self) -> None:
        if self.alive():
            raise RuntimeError(f"{self.component} runs already (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            log.write(f"\n==== opengym demo: start #{self.starts + 1} of {self.component} at {time.strftime('%H:%M:%S')} ====\n".encode())
            log.flush()
            # A session of its own: a Ctrl-C in the driver's terminal reaches the driver, which then
            # stops the workers in order, instead of every worker at once.
            self.process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                            cwd=self.cwd, start_new_session=True)
        self.starts += 1

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_since_start(self) -> str:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self._log_offset)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    @property
    def group(self) -> str:
        return group_id(self.component, self.env.get("OPENGYM_TOPIC_PREFIX", ""),
                        load(self.env.get("OPENGYM_SYSTEM", "").strip() or None))

    def ready(self) -> bool:
        """Alive, past table recovery (Faust logs ``Worker ready``), and its consumer group is stable
        with this one worker holding the partitions (a killed predecessor has left the group)."""
        if not self.alive():
            return False
        log = self.log_since_start()
        if log.rfind(RECOVERED) < max(0, log.rfind(REJOINED)):
            return False  # not recovered yet, or rebalanced since and recovering again
        members = group_members(self.group)
        return (members is not None and len(members) == 1 and members[0].assignment is not None
                and bool(members[0].assignment.topic_partitions))

    def kill(self) -> None:
        """SIGKILL: no shutdown, no commit, no flush; what a crash looks like."""
        if self.alive():
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM (Faust's graceful shutdown), then SIGKILL after ``timeout``."""
        if self.process is None:
            return None
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.send_signal(signal.SIGKILL)
                self.process.wait(10)
        return self.process.returncode


@dataclass
class Supervisor:
    """Launches workers, waits until they are ready, kills or restarts one, stops them all."""

    log_dir: Path
    components: tuple[str, ...] = field(default_factory=worker_names)
    env: dict[str, str] = field(default_factory=dict)
    """Overrides on top of this process's environment (fault knobs, topic prefix, ``OPENGYM_SYSTEM``)."""
    env_per_component: dict[str, dict[str, str]] = field(default_factory=dict)
    """Further overrides for one component (its metrics port, say)."""
    workers: dict[str, Worker] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.log_dir = Path(self.log_dir)
        env = dict(os.environ)
        env.update({k: str(v) for k, v in self.env.items()})
        env["PYTHONUNBUFFERED"] = "1"
        for component in self.components:
            own_env = dict(env)
            # One worker per component: its name is a stable instance id (a restart rejoins as itself).
            own_env.setdefault("OPENGYM_INSTANCE_ID", component)
            own_env.update({k: str(v) for k, v in self.env_per_component.get(component, {}).items()})
            work_dir = self.log_dir / component
            work_dir.mkdir(parents=True, exist_ok=True)
            self.workers[component] = Worker(component, self.log_dir / f"{component}.log", own_env, work_dir)

    def start(self, timeout: float = 120.0) -> None:
        """Start every worker and wait until each is ready."""
        for worker in self.workers.values():
            worker.start()
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 120.0, components: tuple[str, ...] | None = None) -> None:
        deadline = time.monotonic() + timeout
        pending = list(components or self.workers)
        while pending:
            for component in list(pending):
                worker = self.workers[component]
                if not worker.alive():
                    code = worker.process.returncode if worker.process else None
                    raise WorkerFailed(f"{component} worker exited (code {code}) before it was ready; "
                                       f"log {worker.log_path}:\n{log_tail(worker.log_path)}")
                if worker.ready():
                    pending.remove(component)
            if pending and time.monotonic() > deadline:
                tails = "\n".join(f"--- {c} ({self.workers[c].log_path}):\n{log_tail(self.workers[c].log_path, 8)}"
                                  for c in pending)
                crowded = []
                for c in pending:
                    members = group_members(self.workers[c].group) or []
                    if len(members) > 1:
                        crowded.append(f"consumer group {self.workers[c].group} has {len(members)} members: another "
                                       f"{c} worker runs on the same topics (a demo left with --keep-running, or "
                                       "another demo without OPENGYM_TOPIC_PREFIX?)")
                raise WorkerFailed(f"not ready after {timeout:.0f}s: {', '.join(pending)}\n"
                                   + "".join(f"{line}\n" for line in crowded) + tails)
            time.sleep(0.2)

    def dead(self) -> list[str]:
        """Components whose worker has exited."""
        return [c for c, w in self.workers.items() if w.process is not None and not w.alive()]

    def kill(self, component: str) -> None:
        self.workers[component].kill()

    def restart(self, component: str, timeout: float = 120.0) -> None:
        """Stop (gracefully) and start again, perhaps with changed settings. A static member sends no
        LeaveGroup, and while it is still in the group the broker refuses a member whose protocols differ
        from it (InconsistentGroupProtocolError, fatal to aiokafka; docs/notes/components.md): wait until
        its session has expired and the group is empty."""
        worker = self.workers[component]
        if worker.alive():
            worker.stop()
            if worker.env.get("OPENGYM_INSTANCE_ID"):
                deadline = time.monotonic() + 30.0
                while (group_members(worker.group) or []) and time.monotonic() < deadline:
                    time.sleep(0.5)
        worker.start()
        self.wait_ready(timeout, (component,))

    def stop(self, timeout: float = 20.0) -> dict[str, int | None]:
        """Stop every worker (SIGTERM to all first, so they shut down in parallel)."""
        for worker in self.workers.values():
            if worker.alive():
                worker.process.send_signal(signal.SIGTERM)
        return {c: w.stop(timeout) for c, w in self.workers.items()}

    def __enter__(self) -> "Supervisor":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
