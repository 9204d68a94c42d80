"""``opengym bench ticks``: what one clock tick costs Reservation as its table of bookings grows.

Reservation keeps every booking it ever handled (late replies are deduped against it), and a tick on a
partition may change only the bookings still waiting for a seat or a consume reply. The baseline is
the scan a tick did before the due index: every key of the table, its partition, then the booking's
own ``is_due``. The measured path is ``Runtime.due(table, partition, now)`` answering from the table's
:class:`streams.app.DueIndex`. Both run in this process, on the real Reservation table (memory store),
over the same states: ``--finished`` finished bookings (history) and ``--waiting`` still waiting. No
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


def _states(finished: int, waiting: int) -> dict[str, dict]:
    from agents.reservation import orchestration

    states = {}
    for i in range(finished):
        states[f"done-{i}"] = {"phase": orchestration.CONFIRMED, "booking_id": f"done-{i}", "member_id": "m",
                               "class_id": "c", "requested_at": 1_000, "due_at": None, "seen": [f"e-{i}"]}
    for i in range(waiting):
        states[f"wait-{i}"] = {"phase": orchestration.CONSUMING, "booking_id": f"wait-{i}", "member_id": "m",
                               "class_id": "c", "requested_at": 1_000, "due_at": 5_000 + i, "seen": [f"w-{i}"]}
    return states


def measure(finished: int, waiting: int, rounds: int) -> dict:
    import topics
    from agents.reservation import bookings, config, orchestration, rt
    from streams.app import partition_of

    bookings.data.clear()
    bookings.data.update(_states(finished, waiting))  # as recovery writes it: past the table's set hook

    def scan(partition: int) -> list[str]:  # the tick before the index
        return [key for key, state in list(bookings.items())
                if partition_of(key) == partition and orchestration.is_due(state, TICK_NOW, config)]

    def indexed(partition: int) -> list[str]:
        return [key for key, _ in rt.due(bookings, partition, TICK_NOW)]

    bookings.due_index.generation = None  # as after a rebalance: the next due() rebuilds the index
    started = time.perf_counter()
    first = {p: indexed(p) for p in range(topics.PARTITIONS)}
    rebuild_ms = (time.perf_counter() - started) * 1000
    expected = {p: scan(p) for p in range(topics.PARTITIONS)}
    if {p: sorted(keys) for p, keys in first.items()} != {p: sorted(keys) for p, keys in expected.items()}:
        raise AssertionError("the due index and the full scan disagree on what is due")

    result = {"finished": finished, "waiting": waiting, "rebuild_ms": round(rebuild_ms, 2)}
    for name, tick in (("scan", scan), ("index", indexed)):
        started = time.perf_counter()
        for _ in range(rounds):
            for partition in range(topics.PARTITIONS):
                tick(partition)
        result[f"{name}_ms_per_tick"] = round((time.perf_counter() - started) * 1000 / rounds, 3)
    result["ratio"] = round(result["scan_ms_per_tick"] / max(result["index_ms_per_tick"], 1e-9), 1)
    bookings.data.clear()
    bookings.due_index.generation = None
    return result


def main(args) -> int:
    import topics

    sizes = [int(s) for s in args.finished.split(",") if s.strip()]
    results = []
    if not args.json:
        print(f"one tick on all {topics.PARTITIONS} partitions of Reservation's bookings table, {args.waiting} bookings waiting")
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
