"""opengym demo: the whole system as real worker processes, driven by a seeded booking workload."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from opengym_streams.demo.runner import DemoOptions, Faults, run_demo
from opengym_streams.demo.workload import WorkloadConfig


def register(subparsers) -> None:
    defaults, faults = WorkloadConfig(), Faults()
    parser = subparsers.add_parser(
        "demo", help="start the stack and every component, run a booking workload, print the summary",
        description="Starts the stack (if it is not up), creates the topics, launches each component as its "
                    "own `opengym worker` process, seeds gyms, classes and memberships, sends the bookings "
                    "(showing progress every second), checks members in, waits until every booking and "
                    "every settlement has ended, prints the summary and the invariants, and stops the "
                    "workers it started. Exit code 1 when an invariant is violated or the run timed out.")
    size = parser.add_argument_group("workload")
    size.add_argument("--bookings", type=int, default=defaults.bookings, help="how many bookings (default %(default)s)")
    size.add_argument("--seed", type=int, default=defaults.seed, help="seed of the workload plan (default %(default)s)")
    size.add_argument("--rate", type=float, default=DemoOptions.rate,
                      help="bookings sent per second at most, 0 for as fast as possible (default %(default)s)")
    size.add_argument("--max-in-flight", type=int, default=DemoOptions.max_in_flight,
                      help="bookings sent but not yet answered, at most; 0 for no limit (default %(default)s)")
    size.add_argument("--target-latency-ms", type=float, default=DemoOptions.target_latency_ms,
                      help="shrink the in-flight window while the median answer takes longer than this; "
                           "0 for a fixed window (default %(default)s)")
    size.add_argument("--gyms", type=int, default=defaults.gyms, help="gyms (default %(default)s)")
    size.add_argument("--check-in-share", type=float, default=defaults.check_in_share,
                      help="share of confirmed bookings whose member checks in (default %(default)s)")
    knobs = parser.add_argument_group("faults")
    knobs.add_argument("--delay-share", type=float, default=faults.delay_share,
                       help="share of consume requests Entitlement answers late (default %(default)s)")
    knobs.add_argument("--delay-ms", type=int, default=faults.delay_ms,
                       help="how late, in ms (default %(default)s)")
    knobs.add_argument("--booking-timeout-ms", type=int, default=faults.booking_timeout_ms,
                       help="Reservation's deadline for Entitlement's reply (default %(default)s)")
    knobs.add_argument("--payment-failure-rate", type=float, default=faults.payment_failure_rate,
                       help="share of payments the simulated gateway fails (default %(default)s)")
    knobs.add_argument("--pause-notifications", action="store_true",
                       help="run the Notifications worker paused (it sends nothing)")
    knobs.add_argument("--tick-interval", type=float, default=faults.tick_interval,
                       help="seconds between clock ticks in the workers (default %(default)s)")
    run = parser.add_argument_group("run")
    run.add_argument("--timeout", type=float, default=DemoOptions.timeout,
                     help="seconds to wait for every outstanding fact after the last booking (default %(default)s)")
    run.add_argument("--keep-running", action="store_true",
                     help="leave the workers (and the observer's UI) running after the summary")
    run.add_argument("--no-observer", action="store_true", help="do not launch the correlation observer")
    run.add_argument("--no-metrics", action="store_true", help="workers serve no /metrics")
    run.add_argument("--log-dir", type=Path, default=None,
                     help="worker logs and data (default $OPENGYM_HOME/state/demo/<run>)")
    parser.set_defaults(handler=_demo)


def _demo(args) -> int:
    if args.bookings < 1:
        print("opengym demo: --bookings must be at least 1", file=sys.stderr)
        return 2
    options = DemoOptions(
        workload=WorkloadConfig(bookings=args.bookings, seed=args.seed, gyms=max(2, args.gyms),
                                check_in_share=args.check_in_share),
        faults=Faults(delay_share=args.delay_share, delay_ms=args.delay_ms,
                      booking_timeout_ms=args.booking_timeout_ms, payment_failure_rate=args.payment_failure_rate,
                      pause_notifications=args.pause_notifications, tick_interval=args.tick_interval),
        rate=args.rate, max_in_flight=args.max_in_flight, target_latency_ms=args.target_latency_ms,
        timeout=args.timeout, keep_running=args.keep_running,
        observer=not args.no_observer, metrics=not args.no_metrics, log_dir=args.log_dir,
    )
    # SIGTERM (a CI timeout, `kill`) stops the run like Ctrl-C does: through the `finally` that
    # stops the workers, instead of leaving them running without their driver.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # started in the background by a shell
        signal.signal(signal.SIGINT, _interrupt)
    try:
        result = run_demo(options)
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
