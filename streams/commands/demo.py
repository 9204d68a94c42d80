"""opengym demo: the configured system as real worker processes, driven by its demo's seeded workload.

The options are the system's (its workload and fault knobs, from its :class:`~streams.demo.spec.Demo`)
plus the runner's (pace, timeout, what to launch), so the parser is built once the system is known:
``opengym demo --system NAME ...`` (or ``OPENGYM_SYSTEM``) picks it first.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

HELP = "start the stack and every component, run the system's demo workload, print the summary"


def register(subparsers) -> None:
    # Everything after `demo` is parsed by demo_parser, once the system (and so its options) is known.
    parser = subparsers.add_parser("demo", help=HELP, add_help=False)
    parser.set_defaults(handler=_demo, takes_rest=True)


def demo_parser(demo) -> argparse.ArgumentParser:
    """``opengym demo``'s options for a system's demo."""
    from opengym_streams.demo.runner import DemoOptions

    parser = argparse.ArgumentParser(
        prog="opengym demo", description=(demo.description or HELP) + " Exit code 1 when an invariant is "
                                                                       "violated or the run timed out.")
    parser.add_argument("--system", help="the system whose demo runs (default: $OPENGYM_SYSTEM, else the installed "
                                         f"default; this one: {demo.system.name})")
    workload = parser.add_argument_group("workload")
    faults = parser.add_argument_group("faults")
    run = parser.add_argument_group("run")
    demo.add_arguments(workload, faults)
    noun = demo.requests
    workload.add_argument("--rate", type=float, default=DemoOptions.rate,
                          help=f"{noun} sent per second at most, 0 for as fast as possible (default %(default)s)")
    workload.add_argument("--max-in-flight", type=int, default=DemoOptions.max_in_flight,
                          help=f"{noun} sent but not yet answered, at most; 0 for no limit (default %(default)s)")
    workload.add_argument("--target-latency-ms", type=float, default=DemoOptions.target_latency_ms,
                          help="shrink the in-flight window while the median answer takes longer than this; "
                               "0 for a fixed window (default %(default)s)")
    run.add_argument("--timeout", type=float, default=DemoOptions.timeout,
                     help=f"seconds to wait for every outstanding fact after the last of the {noun} "
                          "(default %(default)s)")
    run.add_argument("--keep-running", action="store_true",
                     help="leave the workers (and the observer's UI) running after the summary")
    run.add_argument("--no-observer", action="store_true", help="do not launch the correlation observer")
    run.add_argument("--no-metrics", action="store_true", help="workers serve no /metrics")
    run.add_argument("--log-dir", type=Path, default=None,
                     help="worker logs and data (default $OPENGYM_HOME/state/demo/<run>)")
    return parser


def parse(argv: list[str]):
    """(demo, options) for ``opengym demo ARGV``: the system first, then its demo's options."""
    from opengym_streams.demo.runner import DemoOptions
    from opengym_streams.demo.spec import demo_of
    from opengym_streams.system import load

    first = argparse.ArgumentParser(add_help=False)
    first.add_argument("--system")
    chosen, _ = first.parse_known_args(argv)
    if chosen.system:
        os.environ["OPENGYM_SYSTEM"] = chosen.system  # the workers it starts run the same system
    demo = demo_of(load())
    args = demo_parser(demo).parse_args(argv)
    workload, faults = demo.options(args)
    return demo, DemoOptions(
        workload=workload, faults=faults, rate=args.rate, max_in_flight=args.max_in_flight,
        target_latency_ms=args.target_latency_ms, timeout=args.timeout, keep_running=args.keep_running,
        observer=not args.no_observer, metrics=not args.no_metrics, log_dir=args.log_dir)


def _demo(args) -> int:
    from opengym_streams.demo.runner import run_demo

    try:
        demo, options = parse(args.rest)
    except (LookupError, ValueError) as exc:
        print(f"opengym demo: {exc}", file=sys.stderr)
        return 2
    # SIGTERM (a CI timeout, `kill`) stops the run like Ctrl-C does: through the `finally` that
    # stops the workers, instead of leaving them running without their driver.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # started in the background by a shell
        signal.signal(signal.SIGINT, _interrupt)
    try:
        result = run_demo(options, system=demo.system, demo=demo)
    except KeyboardInterrupt:
        print("opengym demo: interrupted; the workers it started are stopped", file=sys.stderr)
        return 130
    except Exception as exc:  # the workers are stopped by then; say what broke in one place
        from opengym_streams.demo.driver import DriverTimeout
        from opengym_streams.demo.supervisor import WorkerFailed
        if isinstance(exc, (WorkerFailed, DriverTimeout)):
            print(f"opengym demo: {exc}", file=sys.stderr)
            return 1
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 1 if (result.summary.violations or result.timed_out) else 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt
