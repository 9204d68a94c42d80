"""``opengym bench pipeline``: the whole pipeline against the real broker, beside its baselines.

Every component and the observer run as separate worker processes (``opengym worker``), exactly as in
the demo. Two modes:

- **backlog**: N requests of the system demo's workload (OpenGym's bookings) written as fast as the
  producer takes them; the clock runs from the first write to the broker timestamp of the last
  downstream fact of their orchestration's success (for a booking: billing line, pending attendance,
  notification). Sustained requests/s and events/s.
- **fixed rates**: requests offered at fractions of the sustained rate; latency from the request's
  ``occurred_at`` to its terminal event and to its last downstream fact (p50, p95, p99).

It also reports CPU seconds per component and for the broker, and peak RSS per worker, and checks the
demo's invariants at the end: a fast run that loses or doubles anything is a failed run. The shape
(request, terminal events, downstream facts) comes from the system's catalog, the workload from its demo.
The baselines (``streams.bench.baselines``) run after the pipeline, in the same invocation, on the same message size.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

from opengym_streams import stack
from opengym_streams.bench import baselines
from opengym_streams.codec import AvroCodec
from opengym_streams.demo.collector import FactCollector, end_offsets
from opengym_streams.demo.runner import metrics_env, ui_env
from opengym_streams.demo.spec import Demo, demo_of
from opengym_streams.demo.summary import percentile
from opengym_streams.demo.supervisor import Supervisor, observer_available
from opengym_streams.event import now_ms
from opengym_streams.kafka import create_topics, delete_topics_with_prefix
from opengym_streams.settings import get_settings
from opengym_streams.system import System, load
from opengym_streams.topic import Topic, topic_name

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Shape:
    """What the system's catalog says the pipeline is: the request, its orchestration's terminal events,
    and the downstream processes its success triggers (the facts the backlog's clock stops on)."""

    system: System
    demo: Demo
    trigger: str
    terminal: tuple[str, ...]
    succeeded: str
    downstream: tuple[str, ...]

    @classmethod
    def of(cls, system: System) -> "Shape":
        demo = demo_of(system)
        trigger = demo.trigger
        orch = next(bt.orchestration for bt in system.catalog.transactions
                    if bt.orchestration is not None and bt.orchestration.trigger == trigger)
        downstream = tuple(proc.start for bt in system.catalog.transactions for proc in bt.downstream
                           if proc.trigger == orch.succeeded.event)
        return cls(system, demo, trigger, orch.terminal, orch.succeeded.event, downstream)

    @property
    def all_topics(self) -> tuple[Topic, ...]:
        return self.system.topics.all

    @property
    def partitions(self) -> int:
        return self.system.topics.partitions

    @property
    def terminal_topic(self) -> Topic:
        return self.system.topic_for_event(self.terminal[0])

    @property
    def downstream_topics(self) -> tuple[Topic, ...]:
        return tuple(dict.fromkeys(self.system.topic_for_event(t) for t in self.downstream))

    def downstream_counts(self, succeeded: int) -> dict[str, int]:
        """Messages each downstream topic holds once every success has its downstream facts (one of each)."""
        wanted: dict[str, int] = {}
        for event in self.downstream:
            name = topic_name(self.system.topic_for_event(event))
            wanted[name] = wanted.get(name, 0) + succeeded
        return wanted


@dataclass
class BenchOptions:
    bookings: int = 3000
    rate_fractions: tuple[float, ...] = (0.25, 0.5)
    rate_seconds: float = 15.0
    baselines: bool = True
    broker_records: int = 200_000
    passthrough_bookings: int = 20_000
    observer: bool = True
    results: Path | None = None
    label: str = ""
    keep_topics: bool = False
    faust_records: int = 50_000
    faust_only: bool = False
    ui: bool = True
    """The observer serves its transaction view (off: OPENGYM_UI_PORT=0)."""
    ui_viewers: int = 0
    """People watching the view during the backlog: each keeps its four pages open, every one refreshed
    every ``UI_REFRESH_S`` as ``ui.js`` does (an upper bound for one person: a tab refreshes only the page shown)."""


@dataclass
class ProcessUsage:
    cpu_s: float
    peak_rss_mb: float


@dataclass
class RateResult:
    offered_per_s: float
    bookings: int
    terminal_ms: dict[str, float | None]
    downstream_ms: dict[str, float | None]
    violations: int


@dataclass
class PipelineResult:
    label: str
    machine: dict
    message_bytes: float
    broker: dict | None
    passthrough: dict | None
    backlog_bookings: int = 0
    backlog_seconds: float = 0.0
    bookings_per_s: float = 0.0
    events_per_s: float = 0.0
    terminal_seconds: float = 0.0
    usage: dict[str, dict] = field(default_factory=dict)
    broker_cpu_s: float = 0.0
    violations: list[str] = field(default_factory=list)
    rates: list[dict] = field(default_factory=list)
    ratio_to_passthrough: float | None = None
    ratio_to_broker: float | None = None
    faust_passthrough: dict | None = None
    record_ops: dict[str, float] = field(default_factory=dict)
    """Record operations per request during the backlog, by kind (reads by every consumer group)."""
    changelog_per_table: dict[str, float] = field(default_factory=dict)
    """Changelog records written per request, by table (``<app id>-<table>``, without the run's prefix)."""
    cpu_ms_per_booking: dict[str, float] = field(default_factory=dict)
    """CPU ms per request, per worker, all workers and the broker."""
    cpu_us_per_record_op: float | None = None
    ui: str = ""
    """The observer's transaction view: off, served, or served to N viewers."""
    ui_requests: dict[str, int] = field(default_factory=dict)
    ui_cost: dict[str, float] = field(default_factory=dict)
    """All workers' CPU over all record operations (the broker's apart), beside the bare Faust agent's."""


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def machine() -> dict:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {"cpu": model, "cores": os.cpu_count(), "memory_gib": round(mem_kb / 1024 / 1024, 1),
            "python": platform.python_version(), "kafka": stack.KAFKA_VERSION, "registry": stack.APICURIO_VERSION}


def message_size(driver) -> float:
    """Mean encoded size of the requests the pipeline is fed (what the baselines send)."""
    codec = AvroCodec()
    sample = [driver.request_event(r, now_ms()) for r in driver.requests()[:50]]
    sizes = [len(codec.encode(e, topic_name(driver.system.topic_for_event(e.avro_name)))) for e in sample]
    return sum(sizes) / len(sizes)


def _events_written(shape: Shape, start: dict[tuple[str, int], int]) -> int:
    end = end_offsets(shape.all_topics)
    return sum(high - start.get(key, 0) for key, high in end.items())


def _latencies(shape: Shape, facts, ids) -> tuple[dict, dict]:
    requests = facts.first(shape.trigger, ids)
    terminals = facts.by_correlation(*shape.terminal)
    by_type = {t: {e.correlation_id: e.occurred_at for e in facts.of(t)} for t in shape.downstream}
    to_terminal, to_downstream = [], []
    for cid, request in requests.items():
        ends = terminals.get(cid)
        if not ends:
            continue
        to_terminal.append(ends[0].occurred_at - request.occurred_at)
        if ends[0].type_name == shape.succeeded:
            done = [by_type[t].get(cid) for t in shape.downstream]
            if all(d is not None for d in done):
                to_downstream.append(max(done) - request.occurred_at)

    def pcts(values):
        return {f"p{p}": percentile(values, p) for p in (50, 95, 99)}

    return pcts(to_terminal), pcts(to_downstream)


def _ticks_written(shape: Shape, supervisor) -> int:
    """Clock ticks the workers have published (their opengym_events_out_total, scraped)."""
    import urllib.request

    total = 0
    for component in supervisor.workers:
        port = shape.system.component(component).metrics_port
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        except (OSError, LookupError):
            continue
        for line in text.splitlines():
            if line.startswith("opengym_events_out_total{") and 'event_type="ClockTicked"' in line:
                total += int(float(line.rsplit(" ", 1)[1]))
    return total


def record_ops(shape: Shape, requests: int, ends_before, ends_after, reads_before, reads_after, ticks: int) -> dict:
    """Record operations per request by kind: the workers' writes (events, repartitions, changelogs, ticks)
    from every topic's end offsets, and every consumer group's reads from its committed offsets."""
    by_name = {topic_name(t): t for t in shape.all_topics}
    written: dict[str, int] = {"events": 0, "internal": 0, "changelog": 0, "other": 0}
    for key, end in ends_after.items():
        delta = end - ends_before.get(key, 0)
        topic = by_name.get(key[0])
        if topic is None:
            written["changelog" if key[0].endswith("-changelog") else "other"] += delta
        elif topic.kind == "internal":
            written["internal"] += delta
        else:
            written["events"] += delta
    written["events"] -= requests + ticks  # the driver's requests, and the ticks counted apart
    reads = sum(offset - reads_before.get(key, 0) for key, offset in reads_after.items())
    ops = {"events": written["events"], "internal": written["internal"], "changelog": written["changelog"],
           "ticks": ticks, "other writes": written["other"], "reads": reads}
    per = {kind: round(count / requests, 2) for kind, count in ops.items()}
    per["writes"] = round(sum(v for k, v in ops.items() if k != "reads") / requests, 2)
    per["total"] = round(per["writes"] + per["reads"], 2)
    return per


def changelog_per_table(prefix: str, requests: int, ends_before, ends_after) -> dict[str, float]:
    """Changelog records written per request by table, most first (which state costs the records)."""
    written: dict[str, int] = {}
    for key, end in ends_after.items():
        if key[0].endswith("-changelog"):
            table = key[0].removeprefix(prefix).removesuffix("-changelog")
            written[table] = written.get(table, 0) + end - ends_before.get(key, 0)
    return {table: round(count / requests, 2)
            for table, count in sorted(written.items(), key=lambda kv: -kv[1]) if count}


class _Idle:
    """A collector that reads nothing: a driver for the plan before the workers run (to size its requests)."""

    def __init__(self, facts):
        self.facts = facts

    def poll(self, timeout: float = 0.0, max_messages: int = 0) -> int:
        return 0


def run(options: BenchOptions, out: TextIO = sys.stdout) -> PipelineResult:
    def say(msg: str) -> None:
        print(msg, file=out, flush=True)

    run_id = uuid.uuid4().hex[:8]
    shape = Shape.of(load())
    demo = shape.demo
    stack.up()
    # A topic namespace of its own: the run's facts are exactly what it wrote.
    os.environ["OPENGYM_TOPIC_PREFIX"] = f"bench{run_id}."
    create_topics(shape.all_topics)
    faults = demo.bench_faults()
    plan = demo.plan(demo.bench_workload(options.bookings, seed=11), f"{run_id}b")
    planned = demo.driver(plan, _Idle(demo.facts()), faults)
    size = message_size(planned)
    result = PipelineResult(options.label, machine(), round(size, 1), None, None)
    result.ui = "off" if not options.ui else f"served, {options.ui_viewers} viewer(s)"
    say(f"bench pipeline {run_id}: {options.bookings} {demo.requests} backlog, message size {size:.0f} B, "
        f"{result.machine['cores']} cores ({result.machine['cpu']})")

    log_dir = get_settings().home / "state" / "bench" / run_id
    observer = shape.system.observer.name if shape.system.observer is not None else None
    components = tuple(c.name for c in shape.system.workers) + (
        (observer,) if observer and options.observer and observer_available() else ())
    supervisor = Supervisor(log_dir, components, env={**demo.worker_env(faults),
                                                      "OPENGYM_TOPIC_PREFIX": os.environ["OPENGYM_TOPIC_PREFIX"]},
                            env_per_component=metrics_env(components, True, say, shape.system))
    ui_url = None
    if observer in supervisor.workers:
        if options.ui:
            ui_url, ui_vars = ui_env()
        else:
            ui_vars = {"OPENGYM_UI_PORT": "0"}
        supervisor.workers[observer].env.update(ui_vars)
    viewers = None
    try:
        say(f"pipeline: starting {len(components)} workers; logs in {log_dir}")
        supervisor.start()
        collector = FactCollector(end_offsets(), facts=demo.facts())
        driver = demo.driver(plan, collector, faults)
        driver.seed()
        collector.close()

        # ---- backlog ------------------------------------------------------------------------
        requests = driver.requests()
        ids = [driver.id_of(r) for r in requests]
        start_offsets = end_offsets(shape.all_topics)
        terminal_topic = topic_name(shape.terminal_topic)
        before_terminal = baselines.topic_count(terminal_topic, shape.partitions)
        prefix = os.environ["OPENGYM_TOPIC_PREFIX"]
        groups = [prefix + shape.system.topics.app_id(c) for c in components]
        ends_before, reads_before = baselines.topic_ends(prefix), baselines.group_offsets(groups)
        ticks_before = _ticks_written(shape, supervisor)
        cpu_before = {c: _cpu_seconds(w.pid) for c, w in supervisor.workers.items()}
        kafka_pid = stack.our_pid(stack.Layout(get_settings().home), "kafka")
        broker_before = _cpu_seconds(kafka_pid) if kafka_pid else 0.0
        if ui_url is not None and options.ui_viewers:
            viewers = UIViewers(ui_url, options.ui_viewers, ids)
            say(f"backlog: {options.ui_viewers} viewer(s) on {ui_url}, four pages each every {UI_REFRESH_S:.0f} s")
        say(f"backlog: writing {len(requests)} {demo.requests} as fast as the producer takes them ...")
        started_ms = time.time() * 1000
        for request in requests:
            driver.send(driver.request_event(request, now_ms()))
        driver.flush()
        baselines.wait_for_counts({terminal_topic: before_terminal + len(requests)}, shape.partitions,
                                  timeout=max(300.0, options.bookings / 20))
        terminal_ms = baselines.last_timestamp_ms([terminal_topic])
        collector = FactCollector(start_offsets, facts=demo.facts())
        collector.drain()
        succeeded = len([e for e in collector.facts.of(shape.succeeded)])
        # Each downstream fact is published once per success in this run (the bench workload sends no follow-ups).
        downstream = shape.downstream_counts(succeeded)
        baselines.wait_for_counts(downstream, shape.partitions, timeout=300.0)
        end_ms = baselines.last_timestamp_ms(list(downstream))
        result.backlog_bookings = len(requests)
        result.backlog_seconds = round((end_ms - started_ms) / 1000, 3)
        result.terminal_seconds = round((terminal_ms - started_ms) / 1000, 3)
        result.bookings_per_s = round(len(requests) / result.backlog_seconds, 1)
        written = _events_written(shape, start_offsets)
        result.events_per_s = round(written / result.backlog_seconds, 1)
        if viewers is not None:
            result.ui_requests = viewers.stop()
        for c, w in supervisor.workers.items():
            result.usage[c] = asdict(ProcessUsage(round(_cpu_seconds(w.pid) - cpu_before[c], 2),
                                                  round(_peak_rss_mb(w.pid), 1)))
        result.broker_cpu_s = round((_cpu_seconds(kafka_pid) if kafka_pid else 0.0) - broker_before, 2)
        n = len(requests)
        ends_after = baselines.topic_ends(prefix)
        result.record_ops = record_ops(shape, n, ends_before, ends_after,
                                       reads_before, baselines.group_offsets(groups),
                                       _ticks_written(shape, supervisor) - ticks_before)
        result.changelog_per_table = changelog_per_table(prefix, n, ends_before, ends_after)
        result.cpu_ms_per_booking = {c: round(u["cpu_s"] * 1000 / n, 3) for c, u in result.usage.items()}
        workers_cpu = sum(u["cpu_s"] for u in result.usage.values())
        result.cpu_ms_per_booking["all workers"] = round(workers_cpu * 1000 / n, 3)
        result.cpu_ms_per_booking["broker"] = round(result.broker_cpu_s * 1000 / n, 3)
        result.cpu_ms_per_booking["workers + broker"] = round((workers_cpu + result.broker_cpu_s) * 1000 / n, 3)
        ops = result.record_ops["total"] * n
        result.cpu_us_per_record_op = round(workers_cpu * 1e6 / ops, 1) if ops else None
        settler = demo.driver(plan, collector, faults)
        settler.sent = list(ids)
        settler.settle(300.0)
        collector.drain()
        result.violations = demo.check(collector.facts, plan, faults)
        collector.close()
        say(f"  drained in {result.backlog_seconds:.2f}s: {result.bookings_per_s:,.1f} {demo.requests}/s, "
            f"{result.events_per_s:,.0f} events/s written; invariants: "
            f"{'OK' if not result.violations else f'{len(result.violations)} VIOLATIONS'}")

        if ui_url is not None:
            result.ui_cost = measure_ui_cost(supervisor.workers[observer].pid, ui_url, ids,
                                             result.usage[observer]["cpu_s"] / result.backlog_seconds, say)

        # ---- fixed offered rates ------------------------------------------------------------
        for fraction in options.rate_fractions:
            rate = max(1.0, result.bookings_per_s * fraction)
            count = max(20, int(rate * options.rate_seconds))
            rate_plan = demo.plan(demo.bench_workload(count, seed=13), f"{run_id}r{int(fraction * 100)}")
            offsets = end_offsets()
            collector = FactCollector(offsets, facts=demo.facts())
            driver = demo.driver(rate_plan, collector, faults)
            driver.seed()
            say(f"rate {fraction:.0%} of sustained: {rate:,.1f} {demo.requests}/s for {count} {demo.requests} ...")
            driver.send_requests(rate)
            driver.settle(300.0)
            collector.drain()
            ids = [driver.id_of(r) for r in driver.requests()]
            to_terminal, to_downstream = _latencies(shape, collector.facts, ids)
            violations = demo.check(collector.facts, rate_plan, faults)
            collector.close()
            result.rates.append(asdict(RateResult(round(rate, 1), count, to_terminal, to_downstream, len(violations))))
            result.violations += violations
            say(f"  request->terminal p50 {to_terminal['p50']} ms, p95 {to_terminal['p95']} ms, "
                f"p99 {to_terminal['p99']} ms; request->all downstream p99 {to_downstream['p99']} ms")
    finally:
        supervisor.stop()
        prefix = os.environ.pop("OPENGYM_TOPIC_PREFIX", None)
        if prefix and not options.keep_topics:
            delete_topics_with_prefix(prefix)

    # The baselines run after the pipeline: they push a few hundred thousand records through the
    # broker and delete their topics, and the broker removes the deleted logs a minute later, in the
    # background, where it could land in the pipeline's backlog. The baselines, a hundred times
    # faster, are the less sensitive of the two to the pipeline's leftovers.
    if options.baselines:
        say(f"baseline (c): a bare Faust agent passing {options.faust_records} raw records through ...")
        result.faust_passthrough = asdict(baselines.faust_passthrough(options.faust_records, int(size)))
        say(f"  {result.faust_passthrough['cpu_us_per_record_hop']:.0f} us CPU per record hop, "
            f"{result.faust_passthrough['cpu_us_per_record_op']:.0f} us per record operation")
    if options.baselines and not options.faust_only:
        say(f"baseline (a): Kafka's producer/consumer perf tools, {options.broker_records} records of {size:.0f} B ...")
        result.broker = asdict(baselines.broker_limit(options.broker_records, int(size)))
        say(f"  produce {result.broker['produce_per_s']:,.0f} msg/s, consume {result.broker['consume_per_s']:,.0f} msg/s")
        say(f"baseline (b): raw confluent-kafka pass-through over the same hops, "
            f"{options.passthrough_bookings} bookings ...")
        result.passthrough = asdict(baselines.passthrough(options.passthrough_bookings, int(size)))
        say(f"  {result.passthrough['bookings_per_s']:,.0f} bookings/s, "
            f"{result.passthrough['messages_per_s']:,.0f} msg/s")

    if result.passthrough:
        result.ratio_to_passthrough = round(result.bookings_per_s / result.passthrough["bookings_per_s"], 4)
    if result.broker:
        result.ratio_to_broker = round(result.events_per_s / result.broker["produce_per_s"], 4)
    say("")
    say(render(result))
    path = options.results or (Path("bench-results") / f"pipeline-{time.strftime('%Y%m%dT%H%M%S')}-{run_id}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(result), indent=2) + "\n")
    say(f"results: {path}")
    return result


def render(r: PipelineResult) -> str:
    lines = [f"{'':<52}{'value':>16}", "-" * 68]

    def row(label, value):
        lines.append(f"{label:<52}{value:>16}")

    if r.broker:
        row("(a) broker produce, msg/s", f"{r.broker['produce_per_s']:,.0f}")
        row("(a) broker consume, msg/s", f"{r.broker['consume_per_s']:,.0f}")
    if r.passthrough:
        row("(b) raw pass-through, bookings/s", f"{r.passthrough['bookings_per_s']:,.0f}")
        row("(b) raw pass-through, msg/s", f"{r.passthrough['messages_per_s']:,.0f}")
    if r.faust_passthrough:
        row("(c) bare Faust agent, CPU us per record hop", f"{r.faust_passthrough['cpu_us_per_record_hop']:,.0f}")
        row("(c) bare Faust agent, CPU us per record op", f"{r.faust_passthrough['cpu_us_per_record_op']:,.0f}")
    row(f"pipeline backlog of {r.backlog_bookings}, seconds", f"{r.backlog_seconds:.2f}")
    row("pipeline sustained, bookings/s", f"{r.bookings_per_s:,.1f}")
    row("pipeline events written, events/s", f"{r.events_per_s:,.0f}")
    if r.ratio_to_passthrough is not None:
        row("ratio pipeline / pass-through (bookings)", f"{r.ratio_to_passthrough:.4f}")
    if r.ratio_to_broker is not None:
        row("ratio pipeline events / broker produce", f"{r.ratio_to_broker:.4f}")
    for rate in r.rates:
        t, d = rate["terminal_ms"], rate["downstream_ms"]
        row(f"at {rate['offered_per_s']:,.1f}/s: terminal p50/p95/p99 ms", f"{t['p50']}/{t['p95']}/{t['p99']}")
        row(f"at {rate['offered_per_s']:,.1f}/s: downstream p50/p95/p99 ms", f"{d['p50']}/{d['p95']}/{d['p99']}")
    for component, usage in r.usage.items():
        row(f"{component}: CPU s during backlog / peak RSS MB", f"{usage['cpu_s']:.1f} / {usage['peak_rss_mb']:.0f}")
    row("broker: CPU s during backlog", f"{r.broker_cpu_s:.1f}")
    if r.ui:
        row("observer's transaction view", r.ui + (f" ({r.ui_requests['ok']} pages served, "
                                                  f"{r.ui_requests['failed']} failed)" if r.ui_requests else ""))
    if r.ui_cost:
        row("transaction view: CPU ms per page served", f"{r.ui_cost['cpu_ms_per_page']:.1f}")
        row("transaction view: one viewer / observer CPU in the backlog",
            f"{100 * (r.ui_cost['share_of_backlog_cpu'] or 0):.1f}%")
    for who, ms in r.cpu_ms_per_booking.items():
        row(f"CPU ms per request: {who}", f"{ms:.2f}")
    for kind, per in r.record_ops.items():
        row(f"record ops per request: {kind}", f"{per:.2f}")
    for table, per in r.changelog_per_table.items():
        row(f"  changelog records per request: {table}", f"{per:.2f}")
    if r.cpu_us_per_record_op is not None:
        row("CPU us per record op, all workers", f"{r.cpu_us_per_record_op:,.0f}")
    if r.cpu_us_per_record_op is not None and r.faust_passthrough:
        row("ratio to the bare Faust agent's record op",
            f"{r.cpu_us_per_record_op / r.faust_passthrough['cpu_us_per_record_op']:.2f}")
    row("invariants", "OK" if not r.violations else f"{len(r.violations)} violations")
    return "\n".join(lines)


UI_REFRESH_S = 3.0
"""How often ``ui.js`` refreshes a live page (``data-refresh`` in streams/ui/pages.py)."""


class UIViewers:
    """Threads that each fetch the overview, the transaction list, one transaction and the dead letters
    every ``UI_REFRESH_S``, until stopped; counts the answers."""

    def __init__(self, base: str, viewers: int, ids: list[str]):
        import threading

        self.base, self.ids = base, ids
        self.done = threading.Event()
        self.answers: dict[str, int] = {"ok": 0, "failed": 0}
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._view, args=(i,), daemon=True) for i in range(viewers)]
        for thread in self.threads:
            thread.start()

    def _view(self, index: int) -> None:
        import urllib.request

        n = index
        while not self.done.is_set():
            started = time.monotonic()
            cid = self.ids[(n * 97) % len(self.ids)] if self.ids else "none"
            n += 1
            for path in ("/", "/transactions", f"/transactions/{cid}", "/dead-letters"):
                try:
                    with urllib.request.urlopen(self.base + path, timeout=10) as answer:
                        answer.read()
                    outcome = "ok"
                except Exception:  # a page not up yet, or busy: counted, never fatal to the run
                    outcome = "failed"
                with self._lock:
                    self.answers[outcome] += 1
            self.done.wait(max(0.0, UI_REFRESH_S - (time.monotonic() - started)))

    def stop(self) -> dict[str, int]:
        self.done.set()
        for thread in self.threads:
            thread.join(15)
        return dict(self.answers)


UI_COST_S = 15.0
UI_COST_VIEWERS = 4
"""Several viewers make the signal stand above the observer's own background work (its gauge export,
ticks, commits), which varies by a tenth of a second of CPU between windows."""


def measure_ui_cost(pid: int, url: str, ids: list[str], busy_cpu_per_s: float, say,
                    seconds: float = UI_COST_S, viewers: int = UI_COST_VIEWERS) -> dict[str, float]:
    """What watching the transaction view costs the observer, measured right after the backlog (its table
    holds every transaction of it): the observer's CPU over ``seconds`` with nobody looking, with
    ``viewers`` viewers (each four pages every 3 s), and with nobody again. CPU ms per page; and one viewer's
    extra CPU per second (its pages per second times that) as a share of the observer's CPU per second
    while it drained the backlog."""
    say(f"transaction view: the observer's CPU unwatched, watched by {viewers} viewers, unwatched "
        f"({seconds:.0f} s each) ...")
    time.sleep(2.0)

    def cpu_over(window: float) -> float:
        start = _cpu_seconds(pid)
        time.sleep(window)
        return _cpu_seconds(pid) - start

    idle_before = cpu_over(seconds)
    watching = UIViewers(url, viewers, ids)
    watched = cpu_over(seconds)
    pages = watching.stop()
    idle_after = cpu_over(seconds)
    idle = (idle_before + idle_after) / 2
    extra = max(0.0, watched - idle)
    served = max(1, pages["ok"])
    per_page_s = extra / served
    one_viewer_per_s = per_page_s * 4 / UI_REFRESH_S
    cost = {"idle_cpu_s": round(idle, 3), "idle_spread_s": round(abs(idle_before - idle_after), 3),
            "watched_cpu_s": round(watched, 3), "viewers": viewers, "pages": pages["ok"],
            "failed_pages": pages["failed"], "cpu_ms_per_page": round(per_page_s * 1000, 2),
            "share_of_backlog_cpu": round(one_viewer_per_s / busy_cpu_per_s, 4) if busy_cpu_per_s else None}
    say(f"  unwatched {idle_before:.2f} / {idle_after:.2f} s CPU per {seconds:.0f} s, watched {watched:.2f} s "
        f"({pages['ok']} pages): {cost['cpu_ms_per_page']:.1f} ms per page; one viewer = "
        f"{100 * (cost['share_of_backlog_cpu'] or 0):.1f}% of the observer's CPU draining the backlog")
    return cost


def add_arguments(parser) -> None:
    parser.add_argument("--bookings", type=int, default=BenchOptions.bookings,
                        help="bookings in the backlog (default %(default)s)")
    parser.add_argument("--rates", default="0.25,0.5",
                        help="offered rates as fractions of the sustained rate (default %(default)s; '' skips)")
    parser.add_argument("--rate-seconds", type=float, default=BenchOptions.rate_seconds,
                        help="seconds of bookings offered at each rate (default %(default)s)")
    parser.add_argument("--no-baselines", action="store_true", help="skip every baseline")
    parser.add_argument("--faust-baseline-only", action="store_true",
                        help="of the baselines, run only (c) the bare Faust agent")
    parser.add_argument("--faust-records", type=int, default=BenchOptions.faust_records,
                        help="records through the bare Faust agent baseline (default %(default)s)")
    parser.add_argument("--passthrough-bookings", type=int, default=BenchOptions.passthrough_bookings)
    parser.add_argument("--broker-records", type=int, default=BenchOptions.broker_records)
    parser.add_argument("--no-observer", action="store_true", help="run the pipeline without the observer")
    parser.add_argument("--no-ui", action="store_true", help="the observer without its transaction view")
    parser.add_argument("--ui-viewers", type=int, default=0,
                        help="people watching the view during the backlog (each: four pages refreshed every 3 s)")
    parser.add_argument("--results", type=Path, help="write the JSON results here (default bench-results/...)")
    parser.add_argument("--label", default="", help="a name for this run in the results file")
    parser.add_argument("--keep-topics", action="store_true",
                        help="leave the run's topics on the broker (deleted by default: leftovers slow it down)")


def main(args) -> int:
    options = BenchOptions(
        bookings=args.bookings,
        rate_fractions=tuple(float(f) for f in args.rates.split(",") if f.strip()),
        rate_seconds=args.rate_seconds, baselines=not args.no_baselines,
        broker_records=args.broker_records, passthrough_bookings=args.passthrough_bookings,
        observer=not args.no_observer, results=args.results, label=args.label,
        keep_topics=args.keep_topics, faust_only=args.faust_baseline_only, faust_records=args.faust_records,
        ui=not args.no_ui, ui_viewers=args.ui_viewers)
    result = run(options)
    return 1 if result.violations else 0
