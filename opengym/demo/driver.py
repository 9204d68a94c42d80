"""Drives a booking plan through the running components: seed, book, check in, wait until settled."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Callable, Iterable

from confluent_kafka import Producer

from opengym.agents.system import SYSTEM
from opengym.demo.facts import DOWNSTREAM_TYPES
from opengym.demo.workload import WorkloadPlan, booking_event, check_in_event, grant_events, schedule_events
from opengym_streams.codec import AvroCodec
from opengym_streams.demo import driver as library
from opengym_streams.demo.collector import FactCollector
from opengym_streams.demo.driver import DriverTimeout, driver_producer  # noqa: F401  (re-exported)
from opengym_streams.event import Event


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


class Driver(library.Driver):
    """Sends a plan's events and watches the facts they cause (through a :class:`FactCollector`)."""

    trigger = "BookClassRequested"

    def __init__(self, plan: WorkloadPlan, collector: FactCollector, producer: Producer | None = None,
                 codec: AvroCodec | None = None, expected_downstream: tuple[str, ...] = DOWNSTREAM_TYPES):
        super().__init__(collector, producer, codec, system=SYSTEM)
        if not hasattr(collector.facts, "terminals"):
            raise TypeError("the booking driver reads its facts by booking: FactCollector(facts=BookingFacts())")
        self.plan = plan
        self.expected_downstream = expected_downstream
        self.sent_check_ins: set[str] = set()
        self._checks_in = {b.booking_id for b in plan.bookings if b.checks_in}

    @property
    def sent_bookings(self) -> list[str]:
        return self.sent

    @sent_bookings.setter
    def sent_bookings(self, booking_ids: list[str]) -> None:
        self.sent = booking_ids

    # ---- what the library's driver asks --------------------------------------------------------

    def requests(self) -> list:
        return list(self.plan.bookings)

    def id_of(self, booking) -> str:
        return booking.booking_id

    def request_event(self, booking, occurred_at: int) -> Event:
        return booking_event(self.plan, booking, occurred_at=occurred_at)

    def between_polls(self) -> None:
        self.check_in_ready()

    def progress_line(self, elapsed: float) -> str:
        return self.progress().line(elapsed)

    # ---- phases --------------------------------------------------------------------------------

    def seed(self, timeout: float = 60.0, resend_after: float = 15.0) -> None:
        """Schedule the classes and grant the instruments; wait until Reservation and Entitlement
        have published ClassScheduled and InstrumentGranted for all of them (resending what is left
        unanswered: see :meth:`request_until_answered`)."""
        schedules, grants = schedule_events(self.plan), grant_events(self.plan)

        def unanswered() -> list[Event]:
            scheduled = {e.class_id for e in self.facts.of("ClassScheduled")}
            granted = {e.instrument_id for e in self.facts.of("InstrumentGranted")}
            return ([e for e in schedules if e.class_id not in scheduled]
                    + [e for e in grants if e.instrument_id not in granted])

        self.request_until_answered(schedules + grants, unanswered, _seed_id, timeout, resend_after)

    def send_bookings(self, rate: float = 0.0, bookings: Iterable | None = None,
                      on_tick: Callable[[], None] | None = None, max_in_flight: int | None = None,
                      target_latency_ms: float | None = None) -> None:
        """Send the plan's bookings (see :meth:`send_requests`), checking members in as their attendance
        turns pending."""
        self.send_requests(rate, bookings, on_tick, max_in_flight, target_latency_ms)

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
