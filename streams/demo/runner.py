"""The whole demo, for any system: stack, topics, workers, seed, workload, summary, and stopping what it
started. What is the system's own (its workload, driver, invariants and summary) comes from its
:class:`~streams.demo.spec.Demo`."""

from __future__ import annotations

import socket
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TextIO

from opengym_streams.demo.collector import FactCollector, end_offsets, observed_topics
from opengym_streams.demo.driver import DriverTimeout
from opengym_streams.demo.spec import Demo, demo_of
from opengym_streams.demo.summary import Report, render
from opengym_streams.demo.supervisor import Supervisor, observer_status
from opengym_streams.settings import get_settings
from opengym_streams.system import System, load


@dataclass(frozen=True)
class DemoOptions:
    workload: Any = None
    """The system's workload config (None: its demo's default)."""
    faults: Any = None
    """The system's fault knobs (None: its demo's default)."""
    rate: float = 100.0
    """Requests per second the driver sends at most (0: as fast as it can)."""
    max_in_flight: int = 50
    """Requests sent but not yet answered, at most (0: no limit). Keeps an overloaded machine from
    queueing requests past their own deadline: the driver then sends as fast as the system answers."""
    target_latency_ms: float = 1000.0
    """Below ``max_in_flight``, the window shrinks while the median answer takes longer than this
    (0: a fixed window)."""
    timeout: float = 180.0
    """Seconds to wait, after the last request is sent, for every outstanding fact."""
    keep_running: bool = False
    observer: bool = True
    """Launch the correlation observer too, when it exists in this checkout."""
    metrics: bool = True
    log_dir: Path | None = None
    start_stack: bool = True


@dataclass
class DemoResult:
    plan: Any
    summary: Report
    log_dir: Path
    timed_out: str | None = None


def default_log_dir(run_id: str) -> Path:
    base = get_settings().home / "state" / "demo"
    try:
        base.mkdir(parents=True, exist_ok=True)
        return base / run_id
    except OSError:
        return Path(tempfile.mkdtemp(prefix=f"opengym-demo-{run_id}-"))


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def metrics_env(components: tuple[str, ...], enabled: bool, say: Callable[[str], None],
                system: System | None = None) -> dict[str, dict[str, str]]:
    """Each worker on its own metrics port; 0 (disabled) when off or when the port is taken."""
    system = system or load()
    per = {}
    for component in components:
        port = system.component(component).metrics_port if enabled else 0
        if port and not _port_free(port):
            say(f"metrics port {port} of {component} is taken; its /metrics stays off")
            port = 0
        per[component] = {"OPENGYM_METRICS_PORT": str(port)}
    return per


def ui_env() -> tuple[str, dict[str, str]]:
    """The observer UI's address, and its worker's environment: port 6108, or a free one when taken."""
    from opengym_streams.ui import DEFAULT_PORT, free_port

    port = DEFAULT_PORT if _port_free(DEFAULT_PORT) else free_port()
    return f"http://127.0.0.1:{port}", {"OPENGYM_UI_PORT": str(port)}


def machine_line() -> str:
    """Where the numbers came from: CPUs, memory, and how busy the machine was."""
    import os
    import platform

    model = ""
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem_kb = next(int(line.split()[1]) for line in open("/proc/meminfo", encoding="utf-8")
                      if line.startswith("MemTotal"))
        memory = f", {mem_kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        memory = ""
    load = ", load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()) if hasattr(os, "getloadavg") else ""
    return (f"machine: {os.cpu_count()} CPUs{f' ({model})' if model else ''}{memory}{load}; "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}")


def run_demo(options: DemoOptions, out: TextIO = sys.stdout, system: System | None = None,
             demo: Demo | None = None) -> DemoResult:
    """One demo run of the configured system (or ``system``), with its declared demo (or ``demo``)."""
    def say(msg: str) -> None:
        print(msg, file=out, flush=True)

    system = system or load()
    demo = demo or demo_of(system)
    defaults = demo.options(None)
    workload = options.workload if options.workload is not None else defaults[0]
    faults = options.faults if options.faults is not None else defaults[1]
    started = time.monotonic()
    run_id = uuid.uuid4().hex[:8]
    plan = demo.plan(workload, run_id)
    log_dir = Path(options.log_dir) if options.log_dir else default_log_dir(run_id)
    log_dir.mkdir(parents=True, exist_ok=True)

    if options.start_stack:
        from opengym_streams import stack
        for service, state in stack.up().items():
            say(f"stack: {service} {state}")
    from opengym_streams.kafka import create_topics
    created = create_topics(system.topics.all)
    say(f"topics: {sum(1 for s in created.values() if s == 'created')} created, "
        f"{sum(1 for s in created.values() if s == 'exists')} already there")

    components = tuple(c.name for c in system.workers)
    observer = system.observer.name if system.observer is not None else None
    env = demo.worker_env(faults)
    if options.observer and observer is not None:
        available, why = observer_status(env)
        if available:
            components += (observer,)
        else:
            say(f"observer: not launched ({why})")
    elif options.observer:
        say("observer: not launched (the system declares none)")
    per_component = metrics_env(components, options.metrics, say, system)
    ui_url = None
    if observer in components:
        ui_url, ui_vars = ui_env()
        per_component[observer].update(ui_vars)
    supervisor = Supervisor(log_dir, components, env=env, env_per_component=per_component)
    topics = observed_topics(system)
    collector = FactCollector(end_offsets(topics), topics=topics, facts=demo.facts())
    result = DemoResult(plan, Report(), log_dir)
    try:
        say(f"workers: starting {len(components)} ({', '.join(components)}); logs in {log_dir}")
        t0 = time.monotonic()
        supervisor.start()
        say(f"workers: all ready in {time.monotonic() - t0:.1f}s "
            f"(pids {', '.join(f'{c}={w.pid}' for c, w in supervisor.workers.items())})")
        if ui_url:
            say(f"observer UI: {ui_url} (transactions, anomalies, dead letters; live)")

        driver = demo.driver(plan, collector, faults)
        t0 = time.monotonic()
        driver.seed()
        say(f"seeded {demo.seeded(plan)} in {time.monotonic() - t0:.1f}s"
            + (f" (re-sent {driver.seed_resends} requests left unanswered for 15 s: a lost message, see "
               "docs/notes/demo.md)" if driver.seed_resends else ""))
        pace = "full speed" if options.rate <= 0 else f"up to {options.rate:g}/s"
        window = f", at most {options.max_in_flight} in flight" if options.max_in_flight else ""
        if options.max_in_flight and options.target_latency_ms:
            window += f" (fewer while the median answer takes over {options.target_latency_ms:g} ms)"
        say(f"workload: {len(driver.requests())} {demo.requests}, {pace}{window}{demo.describe(plan, workload)}")

        t_work = time.monotonic()
        last = [0.0]

        def tick() -> None:
            now = time.monotonic()
            if now - last[0] >= 1.0:
                last[0] = now
                say(driver.progress_line(now - t_work))
                dead = supervisor.dead()
                if dead:
                    raise DriverTimeout(f"worker(s) exited: {', '.join(dead)}; see {log_dir}")

        driver.send_requests(options.rate, on_tick=tick, max_in_flight=options.max_in_flight or None,
                             target_latency_ms=options.target_latency_ms or None)
        try:
            driver.settle(options.timeout, on_tick=tick)
        except DriverTimeout as exc:
            result.timed_out = str(exc)
            say(f"not settled: {exc}")
        t0 = time.monotonic()
        collector.drain()
        say(driver.progress_line(time.monotonic() - t_work))
        say(f"collected {len(collector.facts.by_id)} events in all (last drain {time.monotonic() - t0:.1f}s)")

        facts = collector.facts
        violations = demo.check(facts, plan, faults)
        result.summary = demo.summarize(facts, plan, violations)
        say("")
        say(render(result.summary))
        say(f"run {run_id}: {time.monotonic() - started:.1f}s in all; worker logs in {log_dir}")
        say(machine_line())
        if options.keep_running:
            say("workers keep running (--keep-running); stop them with Ctrl-C"
                + (f"; the observer UI stays at {ui_url}" if ui_url else ""))
            try:
                while not supervisor.dead():
                    time.sleep(1)
                say(f"worker(s) exited: {', '.join(supervisor.dead())}")
            except KeyboardInterrupt:
                say("stopping")
        return result
    finally:
        collector.close()
        stopped = supervisor.stop()
        unclean = {c: code for c, code in stopped.items() if code not in (0, None, -15)}
        say("workers: stopped" + (f" (exit codes {unclean})" if unclean else ""))
