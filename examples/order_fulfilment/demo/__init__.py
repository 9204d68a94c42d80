"""The order fulfilment demo: a seeded order workload (articles and their stock, customers, orders with their
intents), the pickers' fault knobs, the order driver, the invariants and the summary. The library's runner
runs it: ``opengym demo --system order-fulfilment`` (``DEMO`` is what the declaration names).

- :mod:`order_fulfilment.demo.workload`: the plan, pure data, and its events;
- :mod:`order_fulfilment.demo.driver`: stocks the warehouse, places the orders, says what is outstanding;
- :mod:`order_fulfilment.demo.invariants`, :mod:`order_fulfilment.demo.summary`: what must hold, what is reported;
- :mod:`order_fulfilment.demo.scenarios`: synthetic orders with known faults, for the observer's tests and bench.
"""

from __future__ import annotations

from opengym_streams.demo.spec import Demo
from order_fulfilment.agents.system import SYSTEM


class OrderDemo(Demo):
    requests = "orders"
    trigger = "PlaceOrderRequested"
    description = ("Starts the stack (if it is not up), creates the order fulfilment topics, launches each of its "
                   "components as its own `opengym worker` process, stocks the warehouse, places the orders "
                   "(showing progress every second), waits until every order is shipped and the customer told, "
                   "or refunded and told, prints the summary and the invariants, and stops the workers it started.")

    def add_arguments(self, workload, faults) -> None:
        from order_fulfilment.demo.faults import Faults
        from order_fulfilment.demo.workload import WorkloadConfig

        defaults, knobs = WorkloadConfig(), Faults()
        workload.add_argument("--orders", type=int, default=defaults.orders, help="how many orders (default %(default)s)")
        workload.add_argument("--seed", type=int, default=defaults.seed,
                              help="seed of the workload plan (default %(default)s)")
        workload.add_argument("--articles", type=int, default=defaults.articles,
                              help="articles in stock (default %(default)s)")
        faults.add_argument("--late-pick-share", type=float, default=knobs.late_pick_share,
                            help="share of picks confirmed after the warehouse's deadline (default %(default)s)")
        faults.add_argument("--late-pick-ms", type=int, default=knobs.late_pick_ms,
                            help="how late, in ms (default %(default)s)")
        faults.add_argument("--pick-timeout-ms", type=int, default=knobs.pick_timeout_ms,
                            help="the warehouse's deadline for a pick confirmation (default %(default)s)")
        faults.add_argument("--busy-share", type=float, default=knobs.busy_share,
                            help="share of orders for which every picker is busy (default %(default)s)")
        faults.add_argument("--damaged-share", type=float, default=knobs.damaged_share,
                            help="share of picks that find the article damaged (default %(default)s)")
        faults.add_argument("--lost-pick-share", type=float, default=knobs.lost_pick_share,
                            help="share of picks whose handheld never answers (default %(default)s)")
        faults.add_argument("--decline-share", type=float, default=knobs.decline_share,
                            help="share of card reservations the issuer declines (default %(default)s)")
        faults.add_argument("--stuck-label-share", type=float, default=knobs.stuck_label_share,
                            help="share of shipments whose label never comes back (default %(default)s)")
        faults.add_argument("--tick-interval", type=float, default=knobs.tick_interval,
                            help="seconds between clock ticks in the workers (default %(default)s)")

    def options(self, args):
        from order_fulfilment.demo.faults import Faults
        from order_fulfilment.demo.workload import WorkloadConfig

        if args is None:
            return WorkloadConfig(), Faults()
        if args.orders < 1:
            raise ValueError("--orders must be at least 1")
        return (WorkloadConfig(orders=args.orders, seed=args.seed, articles=max(1, args.articles)),
                Faults(late_pick_share=args.late_pick_share, late_pick_ms=args.late_pick_ms,
                       pick_timeout_ms=args.pick_timeout_ms, busy_share=args.busy_share,
                       damaged_share=args.damaged_share, lost_pick_share=args.lost_pick_share,
                       decline_share=args.decline_share, stuck_label_share=args.stuck_label_share,
                       tick_interval=args.tick_interval))

    def plan(self, workload, run_id: str):
        from order_fulfilment.demo.workload import plan_workload

        return plan_workload(workload, run_id)

    def worker_env(self, faults) -> dict[str, str]:
        return faults.env()

    def facts(self):
        from order_fulfilment.demo.facts import OrderFacts

        return OrderFacts()

    def driver(self, plan, collector, faults):
        from order_fulfilment.demo.driver import Driver

        return Driver(plan, collector, labels_expected=faults.stuck_label_share <= 0,
                      late_pick_ms=faults.late_pick_ms if faults.late_pick_share > 0 else None)

    def seeded(self, plan) -> str:
        return f"{len(plan.stocked)} articles ({sum(a.stock for a in plan.stocked)} units)"

    def describe(self, plan, workload) -> str:
        intents = ", ".join(f"{k} {v}" for k, v in plan.intents().most_common())
        return f" (seed {workload.seed}): {intents}"

    def check(self, facts, plan, faults) -> list[str]:
        from order_fulfilment.demo.invariants import Expectations, check_invariants

        return check_invariants(facts, [o.order_id for o in plan.orders],
                                Expectations(labels=faults.stuck_label_share <= 0))

    def summarize(self, facts, plan, violations):
        from order_fulfilment.demo.summary import summarize

        return summarize(facts, [o.order_id for o in plan.orders], {o.order_id: o.intent for o in plan.orders},
                         violations)

    def bench_workload(self, requests: int, seed: int):
        from order_fulfilment.demo.workload import REGULAR, WorkloadConfig

        return WorkloadConfig(orders=requests, seed=seed, shares={REGULAR: 1.0})

    def bench_faults(self):
        from order_fulfilment.demo.faults import Faults

        # Deadlines far beyond a backlog's drain time: the benchmark measures the happy path's throughput.
        return Faults(late_pick_share=0.0, busy_share=0.0, damaged_share=0.0, decline_share=0.0, tick_interval=1.0,
                      pick_timeout_ms=600_000, payment_timeout_ms=600_000, assign_timeout_ms=600_000)

    def synthetic(self, count: int, t0: int, run: str, seed: int = 11):
        from order_fulfilment.demo import scenarios

        faults = {k: max(1, v * count // 1000) for k, v in scenarios.FAULTS_PER_1000.items()}
        events = []
        for i, scenario in enumerate(scenarios.mix(count, faults, seed=seed)):
            events += scenarios.order(f"bench-{run}-{i:06d}", t0 + i * 5, scenario)
        return events

    def open_transaction(self, transaction_id: str, t0: int):
        from order_fulfilment.demo import scenarios

        # Placed and confirmed, picking under way (the pick list on the picker's handheld).
        return scenarios.order(transaction_id, t0, scenarios.CLEAN)[:8]


DEMO = OrderDemo(SYSTEM)
