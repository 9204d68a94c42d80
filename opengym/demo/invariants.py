"""OpenGym's invariants: what every booking run must hold, as a list of violations (empty when all hold).

Shared by the demo, the end-to-end tests and the benchmark. Each violation is one line naming the
booking (or class, or settlement) and what was expected and seen.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Iterable

from opengym.demo.facts import DOWNSTREAM_TYPES, SETTLEMENT_OUTCOME_TYPES, BookingFacts as Facts, symbol
from opengym_streams.demo.invariants import conflicting_copies, exactly_one


@dataclass(frozen=True)
class Expectations:
    """Which downstream processes are expected to have run (a paused Notifications worker has not)."""

    downstream: tuple[str, ...] = DOWNSTREAM_TYPES
    settlements: bool = True
    """Every partner visit recorded gets one obligation, and every obligation one outcome."""


def check_invariants(facts: Facts, booking_ids: Iterable[str] | None = None,
                     expect: Expectations = Expectations()) -> list[str]:
    """Violations over the bookings in ``booking_ids`` (default: every BookClassRequested seen)."""
    requests = facts.requests(booking_ids)
    terminals = facts.terminals()
    violations: list[str] = []

    violations += exactly_one(terminals, requests, "booking", "terminal event")
    confirmed: dict[str, object] = {}
    for booking_id in sorted(requests):
        confirmations = [e for e in terminals.get(booking_id, []) if e.type_name == "ReservationConfirmed"]
        if confirmations:
            confirmed[booking_id] = confirmations[0]

    violations += _overbooked(facts, requests, terminals)
    violations += _credits(facts, requests, confirmed)
    violations += _credits_remaining(facts, requests)
    violations += conflicting_copies(facts, requests, field="booking_id")
    violations += _downstream(facts, requests, confirmed, expect.downstream)
    if expect.settlements:
        violations += _settlements(facts, requests)
    return violations


def _overbooked(facts: Facts, requests, terminals) -> list[str]:
    capacity = facts.capacities()
    seated: Counter = Counter()
    for booking_id, ends in terminals.items():
        for end in ends:
            if end.type_name == "ReservationConfirmed":
                seated[end.class_id] += 1
    relevant = {r.class_id for r in requests.values()}
    out = []
    for class_id in sorted(relevant):
        if class_id in capacity and seated[class_id] > capacity[class_id]:
            out.append(f"class {class_id}: {seated[class_id]} confirmed bookings, capacity {capacity[class_id]}")
    return out


def _credits(facts: Facts, requests, confirmed) -> list[str]:
    consumed = facts.by_booking("InstrumentConsumed")
    released = facts.by_booking("InstrumentReleased")
    out = []
    for booking_id in sorted(requests):
        net = len(consumed.get(booking_id, ())) - len(released.get(booking_id, ()))
        expected = 1 if booking_id in confirmed else 0
        if net != expected:
            state = "confirmed" if expected else "not confirmed"
            out.append(f"booking {booking_id} ({state}): {len(consumed.get(booking_id, ()))} consumed, "
                       f"{len(released.get(booking_id, ()))} released, net {net}, expected {expected}")
    totals = credit_totals(facts, requests, confirmed)
    if totals["net_class_pack_credits"] != totals["confirmed_class_pack_bookings"]:
        out.append(f"credits: net class-pack credits consumed {totals['net_class_pack_credits']} != "
                   f"confirmed class-pack bookings {totals['confirmed_class_pack_bookings']}")
    return out


def _credits_remaining(facts: Facts, requests) -> list[str]:
    """What Entitlement last said a pack has left must match its grant minus the net uses it
    published: a use consumed twice internally (a crash between publishing and storing) shows here."""
    grants = {e.instrument_id: e.credits for e in facts.of("InstrumentGranted")
              if symbol(e.kind) == "CLASS_PACK" and e.credits is not None}
    uses: dict[str, list] = {}
    for event in facts.of("InstrumentConsumed", "InstrumentReleased"):
        uses.setdefault(event.instrument_id, []).append(event)
    out = []
    for instrument_id, events in sorted(uses.items()):
        if instrument_id not in grants or not any(e.booking_id in requests for e in events):
            continue
        reported = [e for e in events if e.credits_remaining is not None]
        if not reported:
            continue
        net = sum(1 if e.type_name == "InstrumentConsumed" else -1 for e in events)
        expected = grants[instrument_id] - net
        latest = max(e.occurred_at for e in reported)
        said = sorted({e.credits_remaining for e in reported if e.occurred_at == latest})
        if expected not in said:
            out.append(f"instrument {instrument_id}: Entitlement last reported {said} credits remaining, "
                       f"expected {expected} (granted {grants[instrument_id]}, net {net} used)")
    return out


def credit_totals(facts: Facts, requests, confirmed) -> dict[str, int]:
    """Class-pack credits consumed and released for these bookings, and confirmed class-pack bookings."""
    kinds = facts.instrument_kinds()
    consumed = sum(1 for e in facts.of("InstrumentConsumed")
                   if e.booking_id in requests and symbol(e.instrument_kind) == "CLASS_PACK")
    released = sum(1 for e in facts.of("InstrumentReleased")
                   if e.booking_id in requests and kinds.get(e.instrument_id) == "CLASS_PACK")
    on_packs = sum(1 for booking_id, c in confirmed.items()
                   if symbol(c.instrument_kind) == "CLASS_PACK"
                   or (c.instrument_kind is None and kinds.get(c.instrument_id) == "CLASS_PACK"))
    return {"class_pack_consumed": consumed, "class_pack_released": released,
            "net_class_pack_credits": consumed - released, "confirmed_class_pack_bookings": on_packs}


def _downstream(facts: Facts, requests, confirmed, expected_types) -> list[str]:
    out = []
    for type_name in DOWNSTREAM_TYPES:
        per_booking = facts.by_booking(type_name)
        for booking_id in sorted(requests):
            n = len(per_booking.get(booking_id, ()))
            if booking_id in confirmed:
                if type_name in expected_types and n != 1:
                    out.append(f"booking {booking_id} (confirmed): {n} {type_name}, expected exactly one")
                elif type_name not in expected_types and n > 1:
                    out.append(f"booking {booking_id} (confirmed): {n} {type_name}, expected at most one")
            elif n:
                out.append(f"booking {booking_id} (not confirmed): {n} {type_name}, expected none")
    return out


def _settlements(facts: Facts, requests) -> list[str]:
    out = []
    visits = [e for e in facts.of("AttendanceRecorded") if e.booking_id in requests]
    obligations = facts.by_booking("SettlementObligationCalculated")
    outcomes: dict[str, list] = {}
    for event in facts.of(*SETTLEMENT_OUTCOME_TYPES):
        outcomes.setdefault(event.settlement_id, []).append(event)
    for visit in sorted(visits, key=lambda e: e.booking_id):
        owed = obligations.get(visit.booking_id, [])
        if visit.partner_visit and len(owed) != 1:
            out.append(f"booking {visit.booking_id} (partner visit): {len(owed)} settlement obligations, "
                       "expected exactly one")
        if not visit.partner_visit and owed:
            out.append(f"booking {visit.booking_id} (home visit): {len(owed)} settlement obligations, expected none")
        for obligation in owed:
            ends = outcomes.get(obligation.settlement_id, [])
            if len(ends) != 1:
                kinds = ", ".join(sorted(e.type_name for e in ends)) or "none"
                out.append(f"settlement {obligation.settlement_id} (booking {visit.booking_id}): "
                           f"{len(ends)} outcomes ({kinds}), expected exactly one")
    return out
