"""Drives a workload plan through the running components: seed, book, check in, wait until settled."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Iterable

from confluent_kafka import Producer

from opengym_streams.codec import AvroCodec
from opengym_streams.demo.collector import FactCollector
from opengym_streams.demo.facts import DOWNSTREAM_TYPES
from opengym_streams.demo.workload import (WorkloadPlan, booking_event, check_in_event, grant_events,
                                   schedule_events)
from opengym_streams.event import Event, now_ms
from opengym_streams.kafka import producer as make_producer
from opengym_streams.system import load
from opengym_streams.topic import topic_name


def driver_producer() -> Producer:
    """A producer that partitions like the workers (murmur2, as Java and aiokafka do; librdkafka's
    default CRC32 would put a booking on another partition than the components' tables expect)."""
    return make_producer(partitioner="murmur2_random")


class InFlightWindow:
    """How many bookings may be sent and still unanswered.

    With a latency target it adapts (additive increase, multiplicative decrease, as TCP does): when
    the median answer of the last half second took longer than the target, the window shrinks by a
    third; otherwise it grows by a tenth, up to the ceiling. A loaded machine then gets fewer
    bookings at once instead of a queue longer than Reservation's own deadline. The median ignores
    the few replies the delay knob holds back on purpose."""

    def __init__(self, ceiling: int, target_latency_ms: float | None = None, floor: int = 5):
        self.ceiling = max(1, ceiling)
        self.floor = min(floor, self.ceiling)
        self.target_latency_ms = target_latency_ms
        self.size = float(self.ceiling if not target_latency_ms else max(self.floor, self.ceiling / 2))

    @property
    def limit(self) -> int:
        return int(self.size)

    def observe(self, latencies_ms: list[int]) -> None:
        if not self.target_latency_ms or len(latencies_ms) < 5:
            return
        if statistics.median(latencies_ms) > self.target_latency_ms:
            self.size = max(self.floor, self.size * 2 / 3)
        else:
            self.size = min(self.ceiling, self.size + max(1.0, self.size / 10))


class DriverTimeout(RuntimeError):
    """The system did not reach the expected state in time; the message says what is missing."""


@dataclass(frozen=True)
class Progress:
    sent: int
    total: int
    terminal: int
    confirmed: int
    downstream: dict[str, int]
    check_ins_sent: int
    settlements_open: int
    settlements_done: int
    outstanding: dict[str, int]
    window: int | None = None

    def line(self, elapsed: float) -> str:
        down = "/".join(str(self.downstream.get(t, 0)) for t in DOWNSTREAM_TYPES)
        return (f"[{elapsed:6.1f}s] sent {self.sent}/{self.total}  terminal {self.terminal} "
                f"(confirmed {self.confirmed})  billing/pending/notified {down}  "
                f"check-ins {self.check_ins_sent}  settlements {self.settlements_done} done, "
                f"{self.settlements_open} open" + (f"  window {self.window}" if self.window is not None else ""))


def _seed_id(event: Event) -> str:
    return getattr(event, "class_id", None) or getattr(event, "instrument_id", "?")


class Driver:
    """Sends a plan's events and watches the facts they cause (through a :class:`FactCollector`)."""

    def __init__(self, plan: WorkloadPlan, collector: FactCollector, producer: Producer | None = None,
                 codec: AvroCodec | None = None, expected_downstream: tuple[str, ...] = DOWNSTREAM_TYPES):
        self.plan = plan
        self.collector = collector
        self.producer = producer or driver_producer()
        self.codec = codec or AvroCodec()
        self.expected_downstream = expected_downstream
        self.sent_bookings: list[str] = []
        self.sent_check_ins: set[str] = set()
        self.seed_resends = 0
        self.window: InFlightWindow | None = None
        self._booking_ids = {b.booking_id for b in plan.bookings}
        self._checks_in = {b.booking_id for b in plan.bookings if b.checks_in}

    @property
    def facts(self):
        return self.collector.facts

    # ---- producing -----------------------------------------------------------------------------

    def send(self, event: Event, payload: bytes | None = None) -> None:
        """Produce one event on the topic that carries it, keyed by its correlation id."""
        name = topic_name(load().topic_for_event(event.avro_name))
        value = payload if payload is not None else self.codec.encode(event, name)
        while True:
            try:
                self.producer.produce(name, key=event.correlation_id.encode(), value=value)
                break
            except BufferError:
                self.producer.poll(0.2)
        self.producer.poll(0)

    def flush(self, timeout: float = 30.0) -> None:
        left = self.producer.flush(timeout)
        if left:
            raise DriverTimeout(f"{left} events still unacknowledged by the broker after {timeout:.0f}s")

    # ---- phases --------------------------------------------------------------------------------

    def seed(self, timeout: float = 60.0, resend_after: float = 15.0) -> None:
        """Schedule the classes and grant the instruments; wait until Reservation and Entitlement
        have published ClassScheduled and InstrumentGranted for all of them.

        A request still unanswered after ``resend_after`` seconds is sent again, with the same event
        id (both are idempotent), as any client retries; ``seed_resends`` counts them, and the demo
        says so, because an unanswered request is a lost message somewhere."""
        schedules, grants = schedule_events(self.plan), grant_events(self.plan)
        for event in schedules + grants:
            self.send(event)
        self.flush()

        def unanswered() -> list[Event]:
            scheduled = {e.class_id for e in self.facts.of("ClassScheduled")}
            granted = {e.instrument_id for e in self.facts.of("InstrumentGranted")}
            return ([e for e in schedules if e.class_id not in scheduled]
                    + [e for e in grants if e.instrument_id not in granted])

        deadline = time.monotonic() + timeout
        while True:
            wait = max(0.0, min(resend_after, deadline - time.monotonic()))
            try:
                self.wait(lambda: not unanswered(), wait, lambda: "")
                return
            except DriverTimeout:
                missing = unanswered()
                if time.monotonic() >= deadline:
                    raise DriverTimeout(
                        f"after {timeout:.0f}s: seeding still misses "
                        f"{Counter(type(e).__name__ for e in missing)}: {[_seed_id(e) for e in missing[:5]]}") from None
                for event in missing:
                    self.send(event)
                self.flush()
                self.seed_resends += len(missing)

    def send_bookings(self, rate: float = 0.0, bookings: Iterable | None = None,
                      on_tick: Callable[[], None] | None = None, max_in_flight: int | None = None,
                      target_latency_ms: float | None = None) -> None:
        """Send the plan's bookings (or ``bookings``) at ``rate`` per second (0: as fast as the
        producer takes them), never more than ``max_in_flight`` of them without a terminal event
        (fewer while answers take longer than ``target_latency_ms``: see :class:`InFlightWindow`),
        checking members in as their attendance turns pending."""
        todo = list(bookings if bookings is not None else self.plan.bookings)
        self.window = InFlightWindow(max_in_flight, target_latency_ms) if max_in_flight else None
        sent_at: dict[str, int] = {}
        read = {"ReservationConfirmed": 0, "ReservationRejected": 0}
        started = last_adjust = time.monotonic()
        index = 0
        while index < len(todo):
            due = len(todo) if rate <= 0 else min(len(todo), int((time.monotonic() - started) * rate) + 1)
            if self.window is not None:
                if time.monotonic() - last_adjust >= 0.5:
                    last_adjust = time.monotonic()
                    self.window.observe(self._new_latencies(read, sent_at))
                due = min(due, self.terminal_count() + self.window.limit)
            while index < due:
                booking = todo[index]
                sent_at[booking.booking_id] = now_ms()
                self.send(booking_event(self.plan, booking, occurred_at=sent_at[booking.booking_id]))
                self.sent_bookings.append(booking.booking_id)
                index += 1
            self.collector.poll(0.02 if rate > 0 or max_in_flight else 0)
            self.check_in_ready()
            if on_tick:
                on_tick()
        self.flush()

    def _new_latencies(self, read: dict[str, int], sent_at: dict[str, int]) -> list[int]:
        """Request-to-answer latencies of the bookings answered since the last call."""
        latencies = []
        for type_name in read:
            answers = self.facts.of(type_name)
            for event in answers[read[type_name]:]:
                if event.booking_id in sent_at:
                    latencies.append(event.occurred_at - sent_at[event.booking_id])
            read[type_name] = len(answers)
        return latencies

    def terminal_count(self) -> int:
        """Bookings of this plan that have their terminal event."""
        return sum(1 for e in self.facts.of("ReservationConfirmed", "ReservationRejected")
                   if e.booking_id in self._booking_ids)

    def check_in_ready(self) -> int:
        """Check in every planned member whose attendance is pending now; return how many."""
        sent = 0
        for event in self.facts.of("AttendancePending"):
            booking_id = event.booking_id
            if booking_id in self._checks_in and booking_id not in self.sent_check_ins:
                self.send(check_in_event(self.plan, self.plan.booking(booking_id)))
                self.sent_check_ins.add(booking_id)
                sent += 1
        return sent

    def settle(self, timeout: float, on_tick: Callable[[], None] | None = None) -> None:
        """Keep collecting (and checking in) until nothing is outstanding, or fail after ``timeout``."""

        def done() -> bool:
            self.check_in_ready()
            if on_tick:
                on_tick()
            return not any(self.outstanding().values())

        self.wait(done, timeout, lambda: f"still outstanding: {self.outstanding()}")
        self.flush()

    def wait(self, condition: Callable[[], bool], timeout: float, describe: Callable[[], str]) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.collector.poll(0.1)
            if condition():
                return
            if time.monotonic() > deadline:
                raise DriverTimeout(f"after {timeout:.0f}s: {describe()}")

    # ---- what is still expected ----------------------------------------------------------------

    def outstanding(self) -> dict[str, int]:
        """Work the system still owes for the bookings sent so far (all zero when it is settled)."""
        facts = self.facts
        sent = set(self.sent_bookings)
        terminals = facts.terminals()
        confirmed = {b for b in sent if any(e.type_name == "ReservationConfirmed" for e in terminals.get(b, ()))}
        out: Counter = Counter()
        out["terminal events"] = sum(1 for b in sent if b not in terminals)
        for type_name in self.expected_downstream:
            have = {e.booking_id for e in facts.of(type_name)}
            out[type_name] = len(confirmed - have)
        requested = {e.booking_id for e in facts.of("InstrumentConsumeRequested") if e.booking_id in sent}
        replied = {e.booking_id for e in facts.of("InstrumentConsumed", "InstrumentConsumeDenied")}
        out["consume replies"] = len(requested - replied)
        consumed = Counter(e.booking_id for e in facts.of("InstrumentConsumed") if e.booking_id in sent)
        released = Counter(e.booking_id for e in facts.of("InstrumentReleased"))
        out["releases of late consumes"] = sum(
            1 for b in consumed if b in terminals and b not in confirmed and consumed[b] > released[b])
        if "AttendancePending" in self.expected_downstream:
            checked = {e.booking_id for e in facts.of("AttendanceRecorded", "CheckInRejected")}
            out["check-ins"] = len((confirmed & self._checks_in) - checked)
        visits = {e.booking_id for e in facts.of("AttendanceRecorded") if e.partner_visit and e.booking_id in sent}
        obligations = {e.booking_id: e.settlement_id for e in facts.of("SettlementObligationCalculated")}
        out["settlement obligations"] = len(visits - set(obligations))
        ended = {e.settlement_id for e in facts.of("SettlementConfirmed", "SettlementEscalated")}
        out["settlement outcomes"] = sum(1 for b in visits if b in obligations and obligations[b] not in ended)
        return dict(out)

    def progress(self) -> Progress:
        facts = self.facts
        sent = set(self.sent_bookings)
        terminals = [e for e in facts.of("ReservationConfirmed", "ReservationRejected") if e.booking_id in sent]
        confirmed = {e.booking_id for e in terminals if e.type_name == "ReservationConfirmed"}
        obligations = {e.settlement_id for e in facts.of("SettlementObligationCalculated") if e.booking_id in sent}
        ended = {e.settlement_id for e in facts.of("SettlementConfirmed", "SettlementEscalated")} & obligations
        return Progress(
            sent=len(self.sent_bookings), total=len(self.plan.bookings),
            terminal=len({e.booking_id for e in terminals}), confirmed=len(confirmed),
            downstream={t: sum(1 for e in facts.of(t) if e.booking_id in confirmed) for t in DOWNSTREAM_TYPES},
            check_ins_sent=len(self.sent_check_ins), settlements_open=len(obligations - ended),
            settlements_done=len(ended), outstanding=self.outstanding(),
            window=self.window.limit if self.window is not None else None,
        )
