"""``opengym bench observer``: how many events per second one observer worker ingests, next to the same
worker doing nothing but decoding, and how much memory one transaction in flight costs.

The worker figures come from real ``faust -A <the observer's module> worker`` processes against the real
broker: a workload of synthetic bookings (a few with faults) is produced under a fresh topic prefix,
then one worker per mode consumes all of it; throughput is measured between its first and its last
offset commit (so worker start-up is not counted). Memory per transaction comes from tracemalloc over
the engine's state (what the table holds) plus the size of its JSON changelog record.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import time
import tracemalloc
import uuid
from pathlib import Path

from opengym_streams.observer import ObserverState
from opengym_streams.settings import get_settings


def add_arguments(parser) -> None:
    parser.add_argument("--bookings", type=int, default=3000, help="bookings in the workload (default %(default)s)")
    parser.add_argument("--in-flight", type=int, default=5000,
                        help="transactions held open for the memory measurement (default %(default)s)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds one worker may take (default %(default)s)")
    parser.add_argument("--engine-only", action="store_true", help="skip the worker runs (no broker needed)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def _demo():
    from opengym_streams.demo.spec import demo_of
    from opengym_streams.system import load

    return demo_of(load())


def workload(bookings: int, t0: int, run: str) -> list:
    """The system demo's synthetic transactions, a few with faults."""
    return _demo().synthetic(bookings, t0, run, seed=11)


# ---- in-process: the engine alone ------------------------------------------------------------------

def observer_module() -> str:
    from opengym_streams.system import load

    return load().observer.module


def default_observer():
    from opengym_streams.observer import Observer, ObserverConfig
    from opengym_streams.system import load

    return Observer(load().processes(), ObserverConfig.from_env())


def engine_throughput(events: list) -> dict:
    state = ObserverState(default_observer())
    started = time.perf_counter()
    for event in events:
        state.event(event)
    ingest = time.perf_counter() - started
    held = len(state.states)
    started = time.perf_counter()
    state.tick(max(e.occurred_at for e in events) + 3_600_000)
    tick = time.perf_counter() - started
    return {"events": len(events), "events_per_s": len(events) / ingest, "transactions": held,
            "tick_ms_per_1000_transactions": tick * 1000 * 1000 / max(1, held)}


def memory_per_transaction(in_flight: int) -> dict:
    """Heap and changelog bytes per transaction in flight (the system demo's open transaction)."""
    t0 = 1_900_000_000_000
    demo = _demo()
    state = ObserverState(default_observer())
    warm_up = demo.open_transaction("warm-up", t0)
    for event in warm_up:  # builds the catalog's lookup tables
        state.event(event)
    state.states.clear()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    # Events are made and dropped inside the measurement, as a worker decodes and drops them: what
    # stays allocated is what the state keeps.
    for i in range(in_flight):
        for event in demo.open_transaction(f"mem-{i:06d}", t0 + i):
            state.event(event)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    allocated = sum(s.size_diff for s in after.compare_to(before, "filename") if s.size_diff > 0)
    json_bytes = sum(len(json.dumps(s, separators=(",", ":"))) for s in state.states.values())
    return {"in_flight": len(state.states), "facts_per_transaction": len(warm_up),
            "heap_bytes_per_transaction": allocated / len(state.states),
            "changelog_json_bytes_per_transaction": json_bytes / len(state.states)}


# ---- the real worker -----------------------------------------------------------------------------

def _committed_total(group: str, partitions) -> int:
    from opengym_streams.kafka import consumer

    probe = consumer(group)
    try:
        return sum(max(0, tp.offset) for tp in probe.committed(partitions, timeout=10))
    finally:
        probe.close()


def _rss_peak_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def run_worker(mode: str, group: str, partitions, total: int, timeout: float, log_path: Path) -> dict:
    from opengym_streams.settings import REPO_ROOT

    env = {**os.environ, "OPENGYM_METRICS_PORT": "0", "OPENGYM_TICK_INTERVAL": "3600",
           "OPENGYM_OBSERVER_DECODE_ONLY": "1" if mode == "decode-only" else "0",
           "OPENGYM_OBSERVER_GAUGE_INTERVAL": "3600"}
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "faust"), "-A", observer_module(), "worker", "-l", get_settings().bench_loglevel, "--without-web"],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT, start_new_session=True)
    samples: list[tuple[float, int]] = []
    peak = None
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the {mode} worker exited with {process.returncode}; see {log_path}")
            done = _committed_total(group, partitions)
            samples.append((time.monotonic(), done))
            peak = _rss_peak_kb(process.pid) or peak
            if done >= total:
                break
            time.sleep(0.25)
        else:
            raise RuntimeError(f"the {mode} worker did not consume {total} events in {timeout:.0f}s; see {log_path}")
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(10)
    first = next((t, n) for t, n in samples if n > 0)
    last = samples[-1]
    seconds = last[0] - first[0]
    counted = last[1] - first[1]
    return {"mode": mode, "events": total, "measured_events": counted, "seconds": seconds,
            "events_per_s": counted / seconds if seconds > 0 else float("nan"), "peak_rss_mb": (peak or 0) / 1024,
            "load_average_1m": os.getloadavg()[0]}


def _produce(events: list, prefix: str) -> None:
    from opengym_streams.codec import AvroCodec
    from opengym_streams.kafka import create_topics, producer
    from opengym_streams.system import load
    from opengym_streams.topic import topic_name

    topic_for_event = load().topic_for_event

    os.environ["OPENGYM_TOPIC_PREFIX"] = prefix
    create_topics()
    codec = AvroCodec()
    out = producer(partitioner="murmur2_random", **{"linger.ms": 20})
    for event in events:
        name = topic_name(topic_for_event(event.avro_name))
        while True:
            try:
                out.produce(name, key=event.correlation_id.encode(), value=codec.encode(event, name))
                break
            except BufferError:
                out.poll(0.1)
        out.poll(0)
    if out.flush(60):
        raise RuntimeError("the workload was not fully produced")


def worker_throughput(events: list, timeout: float) -> list[dict]:
    """One worker per mode, each under its own topic prefix (its own copy of the workload and its own
    consumer group), one after the other so they never share the CPU."""
    from confluent_kafka import TopicPartition

    from opengym_streams.kafka import delete_topics_with_prefix
    from opengym_streams.observe import observed_topics
    from opengym_streams.system import load
    from opengym_streams.topic import topic_name

    run = uuid.uuid4().hex[:8]
    home = Path(os.environ.get("OPENGYM_HOME", "/tmp")) / "bench" / run
    home.mkdir(parents=True, exist_ok=True)
    results = []
    prefixes = []
    try:
        for mode in ("decode-only", "observer"):
            prefix = f"bench{run}{mode[0]}."
            prefixes.append(prefix)
            _produce(events, prefix)
            sources = [topic_name(t) for t in observed_topics(load(), load().processes())]
            partitions = [TopicPartition(n, p) for n in sources for p in range(4)]
            os.environ["OPENGYM_HOME"] = str(home)
            group = prefix + load().topics.app_id(load().observer.name)
            results.append(run_worker(mode, group, partitions, len(events), timeout, home / f"{mode}.log"))
    finally:
        if prefixes:
            delete_topics_with_prefix(*prefixes)
    return results


def main(args) -> int:
    from opengym_streams.event import now_ms

    events = workload(args.bookings, now_ms() + 24 * 3_600_000, uuid.uuid4().hex[:6])
    results = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
                   f"{platform.python_version()}",
        "bookings": args.bookings, "events": len(events),
        "engine": engine_throughput(events),
        "memory": memory_per_transaction(args.in_flight),
    }
    if not args.engine_only:
        results["workers"] = worker_throughput(events, args.timeout)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"opengym bench observer: {args.bookings} bookings, {len(events)} events ({results['machine']})")
    if "workers" in results:
        print(f"{'one worker':<34}{'events/s':>10}{'events':>9}{'seconds':>9}{'peak RSS':>10}{'load 1m':>9}")
        for r in results["workers"]:
            label = ("decode only (baseline)" if r["mode"] == "decode-only" else "observer (decode + observe)")
            print(f"{label:<34}{r['events_per_s']:>10.0f}{r['measured_events']:>9}{r['seconds']:>9.1f}"
                  f"{r['peak_rss_mb']:>8.0f}MB{r['load_average_1m']:>9.1f}")
        base, full = results["workers"]
        print(f"observing costs {100 * (1 - full['events_per_s'] / base['events_per_s']):.0f}% of the decode-only rate")
    engine = results["engine"]
    print(f"engine alone (in process, no Kafka): {engine['events_per_s']:.0f} events/s; a tick that makes "
          f"everything due costs {engine['tick_ms_per_1000_transactions']:.1f} ms per 1000 transactions")
    memory = results["memory"]
    print(f"memory per transaction in flight ({memory['in_flight']} open, {memory['facts_per_transaction']} facts "
          f"each): {memory['heap_bytes_per_transaction'] / 1024:.1f} KiB heap, "
          f"{memory['changelog_json_bytes_per_transaction']:.0f} B changelog record")
    return 0
