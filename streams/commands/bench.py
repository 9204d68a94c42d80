"""opengym bench BENCHMARK: measurements, not tests. Each benchmark is a module under ``streams.bench``
with ``add_arguments(parser)`` and ``main(args)``; adding one is one line in BENCHMARKS."""

from __future__ import annotations

import importlib

BENCHMARKS = {
    "observer": ("opengym_streams.bench.observer",
                 "events/s one observer worker ingests (next to a decode-only baseline) and memory per "
                 "transaction in flight"),
    "pipeline": ("opengym_streams.bench.pipeline",
                 "the whole pipeline as worker processes: sustained bookings/s from a backlog, latency at fixed "
                 "offered rates, CPU and RSS per worker, beside the broker's limit and a raw pass-through"),
    "ticks": ("opengym_streams.bench.ticks",
              "what one clock tick costs Reservation as its history of bookings grows: the due index against "
              "the full table scan it replaced (in process, no broker)"),
}


def register(subparsers) -> None:
    parser = subparsers.add_parser("bench", help="benchmarks (figures for docs/performance.md)")
    actions = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    for name, (module, summary) in BENCHMARKS.items():
        sub = actions.add_parser(name, help=summary, description=summary)
        _lazy(module).add_arguments(sub)
        sub.set_defaults(handler=lambda args, module=module: _lazy(module).main(args))


def _lazy(module: str):
    return importlib.import_module(module)
