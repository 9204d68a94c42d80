"""OpenGym's summary: outcomes, downstream work, settlements, credits, latency and throughput (the
common tail, dead letters to invariants, is the library's)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

from opengym.demo.facts import TERMINAL_TYPES, BookingFacts as Facts, symbol
from opengym.demo.invariants import credit_totals
from opengym_streams.demo.summary import Report, Table, latencies, percentile  # noqa: F401  (percentile: re-exported)
from opengym_streams.demo.summary import render as render_report


@dataclass
class Summary(Report):
    bookings: int = 0
    outcomes: Counter = field(default_factory=Counter)
    """'confirmed', 'rejected:<REASON>', 'no terminal event'."""
    intents: dict[str, Counter] = field(default_factory=dict)
    """intent -> outcomes (when the plan is known)."""
    downstream: Counter = field(default_factory=Counter)
    check_ins: Counter = field(default_factory=Counter)
    settlements: Counter = field(default_factory=Counter)
    credits: dict[str, int] = field(default_factory=dict)
    latency_ms: dict[str, float | None] = field(default_factory=dict)
    throughput: float | None = None
    """Bookings per second, first request to last terminal event."""
    span_s: float | None = None

    @property
    def confirmed(self) -> int:
        return self.outcomes.get("confirmed", 0)

    def body(self, table: Table) -> None:
        def pct(n: int) -> str:
            return f"{n:>6}  ({100 * n / self.bookings:5.1f}%)" if self.bookings else f"{n:>6}"

        row = table.row
        row("Bookings requested", f"{self.bookings:>6}")
        for outcome, n in sorted(self.outcomes.items(), key=lambda kv: (kv[0] != "confirmed", -kv[1], kv[0])):
            label = outcome.replace("rejected:", "rejected  ") if outcome.startswith("rejected:") else outcome
            row(label, pct(n), 1)
        if self.intents:
            table.blank()
            row("Outcomes by planned intent")
            for intent in sorted(self.intents, key=lambda i: -sum(self.intents[i].values())):
                parts = ", ".join(f"{o.replace('rejected:', '')} {n}"
                                  for o, n in sorted(self.intents[intent].items(), key=lambda kv: -kv[1]))
                row(intent, parts, 1)
        table.blank()
        row("Downstream of ReservationConfirmed", f"(of {self.confirmed} confirmed)")
        for type_name, n in self.downstream.items():
            table.count(type_name, n)
        row("Check-ins", "")
        for name in ("requested", "recorded", "partner visits", "rejected"):
            table.count(name, self.check_ins.get(name, 0))
        row("Settlements (partner visits)", "")
        for name in ("obligations", "payments settled", "payments failed", "confirmed", "escalated", "open"):
            table.count(name, self.settlements.get(name, 0))
        table.blank()
        c = self.credits
        row("Class-pack credits", "")
        table.count("consumed", c.get("class_pack_consumed", 0))
        table.count("released (compensations)", c.get("class_pack_released", 0))
        table.count("net consumed", c.get("net_class_pack_credits", 0))
        table.count("confirmed class-pack bookings", c.get("confirmed_class_pack_bookings", 0))
        verdict = "equal" if c.get("net_class_pack_credits") == c.get("confirmed_class_pack_bookings") else "DIFFER"
        row("net consumed vs confirmed", verdict, 1)
        table.count("late consumes released", c.get("late_consumes_released", 0))
        table.blank()
        table.latency("Latency request -> terminal event (ms)", self.latency_ms, self.throughput, self.span_s,
                      "bookings")


def summarize(facts: Facts, booking_ids: Iterable[str] | None = None, intents: dict[str, str] | None = None,
              violations: list[str] | None = None) -> Summary:
    """The summary of the bookings in ``booking_ids`` (default: all). ``intents`` maps booking id to
    the intent the workload planned, to show outcomes per intent."""
    requests = facts.requests(booking_ids)
    terminals = facts.terminals()
    summary = Summary(bookings=len(requests), violations=list(violations or []))
    confirmed = {}
    for booking_id in requests:
        ends = sorted(terminals.get(booking_id, []), key=lambda e: e.occurred_at)
        if not ends:
            outcome = "no terminal event"
        elif ends[0].type_name == "ReservationConfirmed":
            outcome = "confirmed"
            confirmed[booking_id] = ends[0]
        else:
            outcome = f"rejected:{symbol(ends[0].reason)}"
        summary.outcomes[outcome] += 1
        if intents and booking_id in intents:
            summary.intents.setdefault(intents[booking_id], Counter())[outcome] += 1

    for type_name in ("BillingLineRecorded", "AttendancePending", "NotificationSent"):
        summary.downstream[type_name] = sum(1 for e in facts.of(type_name) if e.booking_id in confirmed)
    summary.check_ins["requested"] = sum(1 for e in facts.of("CheckInRequested") if e.booking_id in requests)
    recorded = [e for e in facts.of("AttendanceRecorded") if e.booking_id in requests]
    summary.check_ins["recorded"] = len(recorded)
    summary.check_ins["partner visits"] = sum(1 for e in recorded if e.partner_visit)
    summary.check_ins["rejected"] = sum(1 for e in facts.of("CheckInRejected") if e.booking_id in requests)

    obligations = [e for e in facts.of("SettlementObligationCalculated") if e.booking_id in requests]
    settlement_ids = {e.settlement_id for e in obligations}
    summary.settlements["obligations"] = len(obligations)
    summary.settlements["amount_cents"] = sum(e.amount_cents for e in obligations)
    summary.settlements["payments settled"] = sum(1 for e in facts.of("PaymentSettled")
                                                  if e.settlement_id in settlement_ids)
    summary.settlements["payments failed"] = sum(1 for e in facts.of("PaymentFailed")
                                                 if e.settlement_id in settlement_ids)
    confirmed_ids = {e.settlement_id for e in facts.of("SettlementConfirmed")} & settlement_ids
    escalated_ids = {e.settlement_id for e in facts.of("SettlementEscalated")} & settlement_ids
    summary.settlements["confirmed"] = len(confirmed_ids)
    summary.settlements["escalated"] = len(escalated_ids)
    summary.settlements["open"] = len(settlement_ids - confirmed_ids - escalated_ids)

    summary.credits = credit_totals(facts, requests, confirmed)
    summary.credits["late_consumes_released"] = sum(
        1 for e in facts.of("InstrumentReleased") if e.booking_id in requests and e.booking_id not in confirmed)

    measured = latencies(facts, requests, "BookClassRequested", TERMINAL_TYPES)
    summary.latency_ms, summary.throughput, summary.span_s = measured.latency_ms, measured.throughput, measured.span_s
    summary.observe(facts, requests)
    return summary


def render(summary: Summary) -> str:
    """The summary table, as printed at the end of the demo."""
    return render_report(summary)
