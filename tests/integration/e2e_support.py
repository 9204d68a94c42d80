"""Helpers for the end-to-end tests: real worker processes on a module's own topics, and a driver."""

from __future__ import annotations

import enum
import time
import types
import typing
import uuid
from dataclasses import dataclass

from confluent_kafka import TopicPartition

from opengym_streams.event import Event, now_ms
from opengym_streams.event import model_for
from opengym_streams.demo.collector import FactCollector, end_offsets
from opengym.demo.driver import Driver, DriverTimeout, driver_producer
from opengym.demo.facts import BookingFacts as Facts
from opengym.demo.faults import Faults
from opengym.demo.invariants import check_invariants
from opengym.demo.workload import WorkloadConfig, WorkloadPlan, plan_workload
from opengym_streams.demo.supervisor import Supervisor, group_id
from opengym_streams.kafka import consumer
from opengym_streams.settings import get_settings
from opengym.topics import CLOCK, DEAD_LETTER, Topic, topic_name

E2E_FAULTS = Faults(delay_share=0.1, delay_ms=4500, booking_timeout_ms=3000, payment_failure_rate=0.3,
                    tick_interval=0.2)
"""Slow replies for one consume in ten (answered after the 3 s booking deadline: long enough that a
busy two-core machine still holds seats in time), and three payments in ten failing: every run sees
late consumes and escalated settlements."""


LOADED_MACHINE = {"OPENGYM_DEADLINE_GRACE_MS": "3000"}
"""Eight workers, the broker, the registry and the driver on two cores deliver a reply seconds after it
is dated; a tick that times a step out before a reply dated in time arrives makes the first run reject
what a replay after a SIGKILL confirms (docs/notes/components.md). The grace covers that delay here."""


def worker_env(prefix: str, faults: Faults = E2E_FAULTS) -> dict[str, str]:
    return {**faults.env(), **LOADED_MACHINE, "OPENGYM_TOPIC_PREFIX": prefix, "OPENGYM_METRICS_PORT": "0"}


@dataclass
class Run:
    plan: WorkloadPlan
    driver: Driver
    collector: FactCollector

    @property
    def facts(self) -> Facts:
        return self.collector.facts

    @property
    def booking_ids(self) -> list[str]:
        return [b.booking_id for b in self.plan.bookings]

    def violations(self, **kwargs) -> list[str]:
        return check_invariants(self.facts, self.booking_ids, **kwargs)


def small_plan(bookings: int, seed: int = 1, **config) -> WorkloadPlan:
    return plan_workload(WorkloadConfig(bookings=bookings, seed=seed, gyms=3, classes_per_gym=4, **config),
                         run_id=uuid.uuid4().hex[:8])


def start_run(plan: WorkloadPlan) -> Run:
    """A driver for ``plan`` whose collector sees only what happens from now on."""
    collector = FactCollector(end_offsets(), facts=Facts())
    return Run(plan, Driver(plan, collector, producer=driver_producer()), collector)


MAX_IN_FLIGHT = 40
"""Bookings unanswered at most: on a busy machine requests then wait in the driver, not in Kafka
past their own deadline."""
TARGET_LATENCY_MS = 1000
"""Fewer in flight while the median answer takes longer (the demo's default too)."""


def drive(plan: WorkloadPlan, rate: float = 60.0, settle_timeout: float = 90.0, on_tick=None) -> Run:
    """Seed, send every booking, check members in, and wait until nothing is outstanding."""
    run = start_run(plan)
    run.driver.seed()
    run.driver.send_bookings(rate, on_tick=on_tick, max_in_flight=MAX_IN_FLIGHT,
                             target_latency_ms=TARGET_LATENCY_MS)
    settle(run, settle_timeout, on_tick)
    return run


def settle(run: Run, timeout: float, on_tick=None) -> None:
    """Wait until nothing is outstanding; on a timeout, fail with the violations that explain it."""
    try:
        run.driver.settle(timeout, on_tick=on_tick)
    except DriverTimeout as exc:
        run.collector.drain()
        violations = run.violations()
        raise AssertionError(f"{exc}; {len(violations)} violations: {violations[:10]}") from None
    run.collector.drain()


def committed_behind(component: str, *sources: Topic) -> int:
    """How many messages on ``sources`` the component's consumer group has not committed yet."""
    group = group_id(component, get_settings().topic_prefix)
    client = consumer(group)
    try:
        behind = 0
        for topic in sources:
            name = topic_name(topic)
            partitions = client.list_topics(name, timeout=10).topics[name].partitions
            committed = client.committed([TopicPartition(name, p) for p in partitions], timeout=10)
            for tp in committed:
                end = client.get_watermark_offsets(TopicPartition(name, tp.partition), timeout=10)[1]
                behind += end - max(tp.offset, 0)
        return behind
    finally:
        client.close()


def start_workers(log_dir, prefix: str, faults: Faults = E2E_FAULTS, timeout: float = 180.0) -> Supervisor:
    supervisor = Supervisor(log_dir, env=worker_env(prefix, faults))
    started = time.monotonic()
    try:
        supervisor.start(timeout)
    except Exception:
        supervisor.stop()
        raise
    supervisor.startup_seconds = time.monotonic() - started
    return supervisor


def sample_event(topic: Topic, handled: set[str] | None = None, **envelope) -> Event:
    """An event of the first business type ``topic`` carries (of those in ``handled``, short names,
    when given): valid Avro, every field filled with a placeholder, and an empty event_id, which breaks
    the envelope's contract."""
    avro_name = next(name for name in topic.events if name not in (CLOCK, DEAD_LETTER)
                     and (handled is None or name.rsplit(".", 1)[-1] in handled))
    model = model_for(avro_name)
    fields = {"event_id": "", "correlation_id": "poison", "causation_id": None, "occurred_at": now_ms()}
    fields.update(envelope)
    for name, info in model.model_fields.items():
        if name in fields:
            continue
        fields[name] = _placeholder(info.annotation)
    return model.model_construct(**fields)


def _placeholder(annotation):
    options = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) else ()
    if type(None) in options:
        return None
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return next(iter(annotation))
    text = str(annotation)
    if "bool" in text.lower():
        return False
    if "int" in text.lower():
        return 1
    return "placeholder"


def delete_prefixed_topics(prefix: str, timeout: float = 30.0) -> int:
    """Delete every topic under ``prefix`` (the catalog's and the Faust apps' own): the broker is
    shared, and a test run leaves some forty topics behind otherwise."""
    from opengym_streams.kafka import admin

    client = admin()
    names = [n for n in client.list_topics(timeout=timeout).topics if n.startswith(prefix)]
    if not names:
        return 0
    for future in client.delete_topics(names, operation_timeout=timeout).values():
        try:
            future.result()
        except Exception:  # already gone, or deletion still pending: nothing to clean up then
            pass
    return len(names)
