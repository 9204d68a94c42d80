"""``opengym bench ticks``: what one clock tick costs an orchestration's owner as its table grows.

The owner of the system's first orchestration keeps every instance it ever handled (late replies are
deduped against it), and a tick on a partition may change only the instances still waiting for a reply. The baseline is
the scan a tick did before the due index: every key of the table, its partition, then the booking's
own wake-up time. The measured path is ``Runtime.due(table, partition, now)`` answering from the table's
:class:`streams.tables.DueIndex`. Both run in this process, on the owner's real table (memory store),
over the same states: ``--finished`` finished instances (history) and ``--waiting`` still waiting. No
broker is needed. The index is built the way recovery leaves it (states written straight into the
store, then one rebuild on the next consumer generation); that rebuild is timed too.
"""

from __future__ import annotations

import json
import time

TICK_NOW = 2_000_000_000_000
"""A tick far enough in the future that every waiting booking is due (the worst case for the index)."""


def add_arguments(parser) -> None:
    parser.add_argument("--finished", default="10000,50000,100000",
                        help="finished bookings in the table, comma-separated sizes (default %(default)s)")
    parser.add_argument("--waiting", type=int, default=100, help="bookings still waiting (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=5, help="ticks per partition to average (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def _orchestrating_agent():
    """The first orchestration of the system, its owner's component and the agent that runs it."""
    import importlib

    from opengym_streams.system import load

    system = load()
    orch = next(bt.orchestration for bt in system.catalog.transactions if bt.orchestration is not None)
    component = importlib.import_module(system.component(orch.owner).module).build()
    agent = next(a for a in component.agents if orch.trigger in a.handlers and a.wake is not None)
    return orch, component, agent


def _states(orch, finished: int, waiting: int) -> dict[str, dict]:
    states = {}
    for i in range(finished):
        states[f"done-{i}"] = {"state": {"phase": orch.succeeded_phase, "step": None, "started_at": 1_000,
                                         "due_at": None, "data": {}, "done": [0, 1]}, "seen": [[f"e-{i}", None]]}
    for i in range(waiting):
        states[f"wait-{i}"] = {"state": {"phase": orch.steps[-1].waits_in, "step": len(orch.steps) - 1,
                                         "started_at": 1_000, "due_at": 5_000 + i, "data": {}, "done": [0]},
                               "seen": [[f"w-{i}", None]]}
    return states


def measure(finished: int, waiting: int, rounds: int) -> dict:
    from opengym_streams.component import unpack
    from opengym_streams.tables import partition_of

    orch, component, agent = _orchestrating_agent()
    runtime = component.runtime
    table = runtime.tables[agent.table]
    partitions = component.topics.partitions
    table.data.clear()
    table.data.update(_states(orch, finished, waiting))  # as recovery writes it: past the table's set hook

    def scan(partition: int) -> list[str]:  # the tick before the index
        found = []
        for key, record in list(table.items()):
            if partition_of(key, partitions) == partition:
                wake = agent.wake(unpack(record)[0])
                if wake is not None and wake <= TICK_NOW:
                    found.append(key)
        return found

    def indexed(partition: int) -> list[str]:
        return runtime.due(table, partition, TICK_NOW)

    table.due_index.generation = None  # as after a rebalance: the next due() rebuilds the index
    started = time.perf_counter()
    first = {p: indexed(p) for p in range(partitions)}
    rebuild_ms = (time.perf_counter() - started) * 1000
    expected = {p: scan(p) for p in range(partitions)}
    if {p: sorted(keys) for p, keys in first.items()} != {p: sorted(keys) for p, keys in expected.items()}:
        raise AssertionError("the due index and the full scan disagree on what is due")

    result = {"finished": finished, "waiting": waiting, "rebuild_ms": round(rebuild_ms, 2)}
    for name, tick in (("scan", scan), ("index", indexed)):
        started = time.perf_counter()
        for _ in range(rounds):
            for partition in range(partitions):
                tick(partition)
        result[f"{name}_ms_per_tick"] = round((time.perf_counter() - started) * 1000 / rounds, 3)
    result["ratio"] = round(result["scan_ms_per_tick"] / max(result["index_ms_per_tick"], 1e-9), 1)
    table.data.clear()
    table.due_index.generation = None
    return result


def main(args) -> int:
    from opengym_streams.system import load

    partitions = load().topics.partitions
    sizes = [int(s) for s in args.finished.split(",") if s.strip()]
    results = []
    if not args.json:
        print(f"one tick on all {partitions} partitions of the orchestration's table, {args.waiting} instances waiting")
        print(f"{'finished':>10} {'full scan ms':>14} {'due index ms':>14} {'ratio':>8} {'index rebuild ms':>18}")
    for size in sizes:
        r = measure(size, args.waiting, args.rounds)
        results.append(r)
        if not args.json:
            print(f"{size:>10,} {r['scan_ms_per_tick']:>14.3f} {r['index_ms_per_tick']:>14.3f} "
                  f"{r['ratio']:>7.0f}x {r['rebuild_ms']:>18.1f}", flush=True)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0
