"""What a system hands the library's demo: its workload, its driver, its invariants and its summary.

The runner (:mod:`streams.demo.runner`) does the rest the same way for every system: the stack, the
topics, one worker process per component of the registry (and the observer), progress lines, the
summary, ``--keep-running``. A system subclasses :class:`Demo`, makes one instance and names the module
holding it in its declaration: ``System(..., demo="opengym.demo")`` (the module's ``DEMO``, or
``"package.module:NAME"``). ``opengym bench pipeline`` and ``opengym bench observer`` use the same object.
"""

from __future__ import annotations

import importlib
from argparse import Namespace, _ArgumentGroup
from typing import Any

from opengym_streams.demo.collector import FactCollector
from opengym_streams.demo.driver import Driver
from opengym_streams.demo.facts import Facts
from opengym_streams.demo.summary import Report
from opengym_streams.event import Event
from opengym_streams.system import System


class Demo:
    """A system's demo. ``workload`` and ``faults`` are the system's own config objects (what to send,
    and the fault knobs the workers get)."""

    requests: str = "requests"
    """What the workload sends, plural ("bookings"): the progress lines and the summary name them."""
    trigger: str = ""
    """The request's event type, the trigger of an orchestration of the catalog (``BookClassRequested``)."""
    description: str = ""
    """What ``opengym demo`` does for this system (its ``--help``)."""

    def __init__(self, system: System):
        self.system = system

    # ---- options ----------------------------------------------------------------------------------

    def add_arguments(self, workload: _ArgumentGroup, faults: _ArgumentGroup) -> None:
        """The system's options of ``opengym demo``: the workload's size and mix, the fault knobs."""

    def options(self, args: Namespace | None) -> tuple[Any, Any]:
        """(workload, faults) from the parsed options; the defaults for ``None``."""
        raise NotImplementedError

    # ---- one run ----------------------------------------------------------------------------------

    def plan(self, workload: Any, run_id: str) -> Any:
        """The run's plan, pure data: what is seeded and what is sent (``run_id`` names its ids)."""
        raise NotImplementedError

    def worker_env(self, faults: Any) -> dict[str, str]:
        """The workers' environment for these faults (the components' fault knobs)."""
        return {}

    def facts(self) -> Facts:
        """What the collector keeps the facts in (the system's :class:`Facts`, with its views)."""
        return Facts()

    def driver(self, plan: Any, collector: FactCollector, faults: Any) -> Driver:
        raise NotImplementedError

    def seeded(self, plan: Any) -> str:
        """What seeding set up, for the line the demo prints after it ("4 gyms, 32 classes")."""
        return "the workload"

    def describe(self, plan: Any, workload: Any) -> str:
        """Appended to the line announcing the workload (its seed, its mix)."""
        return ""

    def check(self, facts: Facts, plan: Any, faults: Any) -> list[str]:
        """Every invariant violation over the plan's transactions (empty: all hold)."""
        raise NotImplementedError

    def summarize(self, facts: Facts, plan: Any, violations: list[str]) -> Report:
        raise NotImplementedError

    # ---- benchmarks -------------------------------------------------------------------------------

    def bench_workload(self, requests: int, seed: int) -> Any:
        """A workload of ``requests`` for ``opengym bench pipeline``: nothing sent after the requests
        themselves (no follow-ups on the latency path being measured)."""
        raise NotImplementedError

    def bench_faults(self) -> Any:
        """No faults, and deadlines far beyond a backlog's drain time: the happy path's throughput."""
        raise NotImplementedError

    def synthetic(self, count: int, t0: int, run: str, seed: int = 11) -> list[Event]:
        """The facts of ``count`` synthetic transactions, a few with known faults, as the components would
        publish them (``opengym bench observer``'s workload)."""
        raise NotImplementedError

    def open_transaction(self, transaction_id: str, t0: int) -> list[Event]:
        """The facts of one transaction still in flight (``opengym bench observer``'s memory measure)."""
        raise NotImplementedError


def demo_of(system: System) -> Demo:
    """The demo the system declares (``System.demo``)."""
    if not system.demo:
        raise LookupError(f"{system.name} declares no demo (System(demo='package.module'))")
    module_name, _, attr = system.demo.partition(":")
    demo = getattr(importlib.import_module(module_name), attr or "DEMO", None)
    if not isinstance(demo, Demo):
        raise LookupError(f"{system.demo}: {module_name}.{attr or 'DEMO'} is not a streams.demo.spec.Demo")
    return demo
