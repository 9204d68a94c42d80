"""The demo's summary: outcomes, downstream work, settlements, credits, latency and throughput."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from opengym_streams.demo.facts import Facts, symbol
from opengym_streams.demo.invariants import credit_totals


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100) of ``values``; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class Summary:
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
    redelivered: int = 0
    dead_letters: Counter = field(default_factory=Counter)
    anomalies: Counter = field(default_factory=Counter)
    """What the correlation observer reported about these bookings, by anomaly kind."""
    violations: list[str] = field(default_factory=list)

    @property
    def confirmed(self) -> int:
        return self.outcomes.get("confirmed", 0)


def summarize(facts: Facts, booking_ids: Iterable[str] | None = None, intents: dict[str, str] | None = None,
              violations: list[str] | None = None) -> Summary:
    """The summary of the bookings in ``booking_ids`` (default: all). ``intents`` maps booking id to
    the intent the workload planned, to show outcomes per intent."""
    requests = facts.requests(booking_ids)
    terminals = facts.terminals()
    summary = Summary(bookings=len(requests), violations=list(violations or []))
    confirmed = {}
    latencies = []
    first_request = last_terminal = None
    for booking_id, request in requests.items():
        ends = sorted(terminals.get(booking_id, []), key=lambda e: e.occurred_at)
        if not ends:
            outcome = "no terminal event"
        else:
            end = ends[0]
            if end.type_name == "ReservationConfirmed":
                outcome = "confirmed"
                confirmed[booking_id] = end
            else:
                outcome = f"rejected:{symbol(end.reason)}"
            latencies.append(end.occurred_at - request.occurred_at)
            last_terminal = end.occurred_at if last_terminal is None else max(last_terminal, end.occurred_at)
        first_request = request.occurred_at if first_request is None else min(first_request, request.occurred_at)
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

    summary.latency_ms = {name: percentile(latencies, p) for name, p in (("p50", 50), ("p95", 95), ("p99", 99))}
    summary.latency_ms["max"] = max(latencies) if latencies else None
    if first_request is not None and last_terminal is not None and last_terminal > first_request:
        summary.span_s = (last_terminal - first_request) / 1000
        summary.throughput = len(latencies) / summary.span_s
    summary.redelivered = sum(facts.redelivered.values())
    summary.dead_letters = Counter(facts.dead_letters)
    summary.anomalies = Counter(symbol(e.kind) for e in facts.of("AnomalyDetected") if e.correlation_id in requests)
    return summary


def render(summary: Summary) -> str:
    """The summary table, as printed at the end of the demo."""
    lines: list[str] = []

    def row(label: str, value="", indent: int = 0) -> None:
        lines.append(f"{'  ' * indent}{label:<{44 - 2 * indent}} {value}".rstrip())

    def pct(n: int) -> str:
        return f"{n:>6}  ({100 * n / summary.bookings:5.1f}%)" if summary.bookings else f"{n:>6}"

    lines.append("=" * 64)
    row("Bookings requested", f"{summary.bookings:>6}")
    for outcome, n in sorted(summary.outcomes.items(), key=lambda kv: (kv[0] != "confirmed", -kv[1], kv[0])):
        label = outcome.replace("rejected:", "rejected  ") if outcome.startswith("rejected:") else outcome
        row(label, pct(n), 1)
    if summary.intents:
        lines.append("")
        row("Outcomes by planned intent")
        for intent in sorted(summary.intents, key=lambda i: -sum(summary.intents[i].values())):
            parts = ", ".join(f"{o.replace('rejected:', '')} {n}"
                              for o, n in sorted(summary.intents[intent].items(), key=lambda kv: -kv[1]))
            row(intent, parts, 1)
    lines.append("")
    row("Downstream of ReservationConfirmed", f"(of {summary.confirmed} confirmed)")
    for type_name, n in summary.downstream.items():
        row(type_name, f"{n:>6}", 1)
    row("Check-ins", "")
    for name in ("requested", "recorded", "partner visits", "rejected"):
        row(name, f"{summary.check_ins.get(name, 0):>6}", 1)
    row("Settlements (partner visits)", "")
    for name in ("obligations", "payments settled", "payments failed", "confirmed", "escalated", "open"):
        row(name, f"{summary.settlements.get(name, 0):>6}", 1)
    lines.append("")
    c = summary.credits
    row("Class-pack credits", "")
    row("consumed", f"{c.get('class_pack_consumed', 0):>6}", 1)
    row("released (compensations)", f"{c.get('class_pack_released', 0):>6}", 1)
    row("net consumed", f"{c.get('net_class_pack_credits', 0):>6}", 1)
    row("confirmed class-pack bookings", f"{c.get('confirmed_class_pack_bookings', 0):>6}", 1)
    verdict = "equal" if c.get("net_class_pack_credits") == c.get("confirmed_class_pack_bookings") else "DIFFER"
    row("net consumed vs confirmed", verdict, 1)
    row("late consumes released", f"{c.get('late_consumes_released', 0):>6}", 1)
    lines.append("")
    row("Latency request -> terminal event (ms)", "")
    for name in ("p50", "p95", "p99", "max"):
        value = summary.latency_ms.get(name)
        row(name, f"{value:>6.0f}" if value is not None else "     -", 1)
    row("Throughput (bookings/s)", f"{summary.throughput:>8.1f}" if summary.throughput else "     -")
    if summary.span_s:
        row("first request -> last terminal (s)", f"{summary.span_s:>8.1f}", 1)
    row("Redelivered events (deduped)", f"{summary.redelivered:>6}")
    row("Dead letters", f"{sum(summary.dead_letters.values()):>6}" +
        (f"  ({', '.join(f'{k} {v}' for k, v in sorted(summary.dead_letters.items()))})"
         if summary.dead_letters else ""))
    if summary.anomalies:
        row("Observer anomalies", f"{sum(summary.anomalies.values()):>6}  (" +
            ", ".join(f"{k} {v}" for k, v in sorted(summary.anomalies.items(), key=lambda kv: -kv[1])) + ")")
    lines.append("")
    if summary.violations:
        row("Invariants", f"{len(summary.violations)} VIOLATED")
        for violation in summary.violations[:20]:
            lines.append(f"  - {violation}")
        if len(summary.violations) > 20:
            lines.append(f"  ... and {len(summary.violations) - 20} more")
    else:
        row("Invariants", "all hold")
    lines.append("=" * 64)
    return "\n".join(lines)
