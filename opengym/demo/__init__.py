"""OpenGym's demo: a seeded booking workload (gyms, classes, members and their instruments, bookings with
their intents), the booking driver, the invariants and the summary. The library's runner
(``opengym demo``) and benchmarks run it; ``DEMO`` is what OpenGym's declaration names.

- :mod:`opengym.demo.workload`: the plan, pure data, and its events;
- :mod:`opengym.demo.driver`: seeds, books, checks members in, says what is outstanding;
- :mod:`opengym.demo.invariants`, :mod:`opengym.demo.summary`: what must hold, what is reported;
- :mod:`opengym.demo.scenarios`: synthetic bookings with known faults, for the observer's tests and bench.
"""

from __future__ import annotations

from opengym.agents.system import SYSTEM
from opengym_streams.demo.spec import Demo


class BookingDemo(Demo):
    requests = "bookings"
    trigger = "BookClassRequested"
    description = ("Starts the stack (if it is not up), creates the topics, launches each component as its own "
                   "`opengym worker` process, seeds gyms, classes and memberships, sends the bookings (showing "
                   "progress every second), checks members in, waits until every booking and every settlement "
                   "has ended, prints the summary and the invariants, and stops the workers it started.")

    def add_arguments(self, workload, faults) -> None:
        from opengym.demo.faults import Faults
        from opengym.demo.workload import WorkloadConfig

        defaults, knobs = WorkloadConfig(), Faults()
        workload.add_argument("--bookings", type=int, default=defaults.bookings,
                              help="how many bookings (default %(default)s)")
        workload.add_argument("--seed", type=int, default=defaults.seed,
                              help="seed of the workload plan (default %(default)s)")
        workload.add_argument("--gyms", type=int, default=defaults.gyms, help="gyms (default %(default)s)")
        workload.add_argument("--check-in-share", type=float, default=defaults.check_in_share,
                              help="share of confirmed bookings whose member checks in (default %(default)s)")
        faults.add_argument("--delay-share", type=float, default=knobs.delay_share,
                            help="share of consume requests Entitlement answers late (default %(default)s)")
        faults.add_argument("--delay-ms", type=int, default=knobs.delay_ms, help="how late, in ms (default %(default)s)")
        faults.add_argument("--booking-timeout-ms", type=int, default=knobs.booking_timeout_ms,
                            help="Reservation's deadline for Entitlement's reply (default %(default)s)")
        faults.add_argument("--payment-failure-rate", type=float, default=knobs.payment_failure_rate,
                            help="share of payments the simulated gateway fails (default %(default)s)")
        faults.add_argument("--pause-notifications", action="store_true",
                            help="run the Notifications worker paused (it sends nothing)")
        faults.add_argument("--tick-interval", type=float, default=knobs.tick_interval,
                            help="seconds between clock ticks in the workers (default %(default)s)")

    def options(self, args):
        from opengym.demo.faults import Faults
        from opengym.demo.workload import WorkloadConfig

        if args is None:
            return WorkloadConfig(), Faults()
        if args.bookings < 1:
            raise ValueError("--bookings must be at least 1")
        return (WorkloadConfig(bookings=args.bookings, seed=args.seed, gyms=max(2, args.gyms),
                               check_in_share=args.check_in_share),
                Faults(delay_share=args.delay_share, delay_ms=args.delay_ms, booking_timeout_ms=args.booking_timeout_ms,
                       payment_failure_rate=args.payment_failure_rate, pause_notifications=args.pause_notifications,
                       tick_interval=args.tick_interval))

    def plan(self, workload, run_id: str):
        from opengym.demo.workload import plan_workload

        return plan_workload(workload, run_id)

    def worker_env(self, faults) -> dict[str, str]:
        return faults.env()

    def facts(self):
        from opengym.demo.facts import BookingFacts

        return BookingFacts()

    def driver(self, plan, collector, faults):
        from opengym.demo.driver import Driver

        return Driver(plan, collector, expected_downstream=faults.expected_downstream)

    def seeded(self, plan) -> str:
        return (f"{len(plan.gyms)} gyms, {len(plan.classes)} classes, "
                f"{sum(1 for m in plan.members if m.kind)} instruments")

    def describe(self, plan, workload) -> str:
        intents = ", ".join(f"{k} {v}" for k, v in plan.intents().most_common())
        return f" (seed {workload.seed}): {intents}"

    def check(self, facts, plan, faults) -> list[str]:
        from opengym.demo.invariants import Expectations, check_invariants

        return check_invariants(facts, [b.booking_id for b in plan.bookings],
                                Expectations(downstream=faults.expected_downstream))

    def summarize(self, facts, plan, violations):
        from opengym.demo.summary import summarize

        return summarize(facts, [b.booking_id for b in plan.bookings], {b.booking_id: b.intent for b in plan.bookings},
                         violations)

    def bench_workload(self, requests: int, seed: int):
        from opengym.demo.workload import WorkloadConfig

        return WorkloadConfig(bookings=requests, seed=seed, check_in_share=0.0)

    def bench_faults(self):
        from opengym.demo.faults import Faults

        # A deadline far beyond the backlog's drain time: the benchmark measures the happy path's
        # throughput, not how many bookings a queue of thousands pushes past a 2 s deadline.
        return Faults(delay_share=0.0, payment_failure_rate=0.0, tick_interval=1.0, booking_timeout_ms=600_000)

    def synthetic(self, count: int, t0: int, run: str, seed: int = 11):
        from opengym.demo import scenarios

        faults = {k: max(1, v * count // 1000) for k, v in scenarios.FAULTS_PER_1000.items()}
        events = []
        for i, scenario in enumerate(scenarios.mix(count, faults, seed=seed)):
            events += scenarios.booking(f"bench-{run}-{i:06d}", t0 + i * 5, scenario)
        return events

    def open_transaction(self, transaction_id: str, t0: int):
        from opengym.demo import scenarios

        # Confirmed, its downstream processes started, its attendance still pending.
        return scenarios.booking(transaction_id, t0, scenarios.CLEAN)[:7]


DEMO = BookingDemo(SYSTEM)
