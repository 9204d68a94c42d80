"""Synthetic fact streams for the observer: whole bookings, clean or with one known fault, built the way
the components build them (each event caused by the previous, same correlation id) so an oracle knows
exactly which anomalies the observer must report. The observer's tests and ``opengym bench observer`` use them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from opengym_streams.event import Event
from opengym.models import (AttendancePending, AttendanceRecorded, BillingLineRecorded, BookClassRequested,
                            InstrumentConsumed, InstrumentConsumeDenied, InstrumentConsumeRequested,
                            InstrumentReleased, InstrumentReleaseRequested, NotificationSent, PaymentFailed,
                            PaymentInitiated, PaymentSettled, ReservationConfirmed, ReservationRejected,
                            SettlementConfirmed, SettlementEscalated, SettlementObligationCalculated)

CLEAN = "clean"
CLEAN_PARTNER = "clean-partner"
DENIED = "denied"
PAYMENT_FAILED = "payment-failed"
NESTED_TIMEOUT = "nested-timeout"
LATE_REPLY = "late-reply"
NOTIFICATION_NEVER_STARTED = "notification-never-started"
ATTENDANCE_NEVER_COMPLETED = "attendance-never-completed"
SETTLEMENT_STALLED = "settlement-stalled"
ORPHAN_REPLY = "orphan-reply"

SCENARIOS = (CLEAN, CLEAN_PARTNER, DENIED, PAYMENT_FAILED, NESTED_TIMEOUT, LATE_REPLY,
             NOTIFICATION_NEVER_STARTED, ATTENDANCE_NEVER_COMPLETED, SETTLEMENT_STALLED, ORPHAN_REPLY)

EXPECTED: dict[str, tuple[tuple[str, str], ...]] = {
    CLEAN: (),
    CLEAN_PARTNER: (),
    DENIED: (),
    PAYMENT_FAILED: (),
    NESTED_TIMEOUT: (("NESTED_TIMEOUT", "InstrumentConsumeProcess"),),
    LATE_REPLY: (("NESTED_TIMEOUT", "InstrumentConsumeProcess"), ("LATE_REPLY", "InstrumentConsumeProcess")),
    NOTIFICATION_NEVER_STARTED: (("DOWNSTREAM_NOT_STARTED", "NotificationProcess"),),
    ATTENDANCE_NEVER_COMPLETED: (("DOWNSTREAM_NOT_COMPLETED", "AttendancePendingProcess"),),
    SETTLEMENT_STALLED: (("CHAIN_STALLED", "PartnerVisitSettlement"),),
    ORPHAN_REPLY: (("REPLY_WITHOUT_REQUEST", "InstrumentConsumeProcess"),),
}
"""(kind, process) of every anomaly each scenario must produce, and nothing else."""

FAULTS_PER_1000 = {NESTED_TIMEOUT: 10, LATE_REPLY: 5, NOTIFICATION_NEVER_STARTED: 10, SETTLEMENT_STALLED: 10,
                   DENIED: 50, PAYMENT_FAILED: 10}
"""The faults in a thousand bookings of the observer benchmark's workload."""


@dataclass(frozen=True)
class Timing:
    """Gaps between the facts of one booking, in ms (all well inside the catalog's deadlines)."""

    step_ms: int = 20
    consume_deadline_ms: int = 5000
    """The catalog's InstrumentConsumeProcess deadline, counted from BookClassRequested like
    Reservation counts it; a late reply comes after it."""


def booking(booking_id: str, t0: int, scenario: str = CLEAN, timing: Timing = Timing()) -> list[Event]:
    """Every fact of one booking (and its settlement chain), in the order the components emit them."""
    step = timing.step_ms
    t = t0
    member, klass, home, partner_gym = f"m-{booking_id}", f"c-{booking_id}", "gym-home", "gym-partner"
    partner = scenario in (CLEAN_PARTNER, PAYMENT_FAILED, SETTLEMENT_STALLED)

    def at(offset: int) -> int:
        return t + offset

    facts: list[Event] = []
    requested = BookClassRequested.new(correlation_id=booking_id, occurred_at=at(0), booking_id=booking_id,
                                       member_id=member, class_id=klass)
    facts.append(requested)
    consume = InstrumentConsumeRequested.new(caused_by=requested, occurred_at=at(step), booking_id=booking_id,
                                             member_id=member, class_id=klass,
                                             gym_id=partner_gym if partner else home, class_starts_at=at(3_600_000))
    if scenario == ORPHAN_REPLY:
        # The request is never seen (produced nowhere): the reply names a request the observer cannot find.
        return [requested, InstrumentConsumeDenied.new(caused_by=consume, occurred_at=at(2 * step),
                                                       booking_id=booking_id, member_id=member,
                                                       reason="NO_ENTITLEMENT"),
                ReservationRejected.new(caused_by=consume, occurred_at=at(3 * step), booking_id=booking_id,
                                        member_id=member, class_id=klass, reason="NO_ENTITLEMENT")]
    facts.append(consume)
    if scenario == DENIED:
        denied = InstrumentConsumeDenied.new(caused_by=consume, occurred_at=at(2 * step), booking_id=booking_id,
                                             member_id=member, reason="CREDITS_EXHAUSTED")
        return facts + [denied, ReservationRejected.new(caused_by=denied, occurred_at=at(3 * step),
                                                        booking_id=booking_id, member_id=member, class_id=klass,
                                                        reason="CREDITS_EXHAUSTED")]
    if scenario in (NESTED_TIMEOUT, LATE_REPLY):
        gave_up = at(timing.consume_deadline_ms)
        facts.append(ReservationRejected.new(caused_by=consume, occurred_at=gave_up, booking_id=booking_id,
                                             member_id=member, class_id=klass, reason="ENTITLEMENT_TIMEOUT"))
        if scenario == LATE_REPLY:
            late = InstrumentConsumed.new(caused_by=consume, occurred_at=gave_up + 500, booking_id=booking_id,
                                          member_id=member, instrument_id=f"i-{booking_id}",
                                          instrument_kind="CLASS_PACK", home_gym_id=home, credits_remaining=3)
            release = InstrumentReleaseRequested.new(caused_by=late, occurred_at=gave_up + 500 + step,
                                                     booking_id=booking_id, member_id=member,
                                                     instrument_id=f"i-{booking_id}", reason="LATE_CONSUME")
            facts += [late, release,
                      InstrumentReleased.new(caused_by=release, occurred_at=gave_up + 500 + 2 * step,
                                             booking_id=booking_id, member_id=member,
                                             instrument_id=f"i-{booking_id}", credits_remaining=4)]
        return facts
    consumed = InstrumentConsumed.new(caused_by=consume, occurred_at=at(2 * step), booking_id=booking_id,
                                      member_id=member, instrument_id=f"i-{booking_id}", instrument_kind="CLASS_PACK",
                                      home_gym_id=home, credits_remaining=3)
    confirmed = ReservationConfirmed.new(caused_by=consumed, occurred_at=at(3 * step), booking_id=booking_id,
                                         member_id=member, class_id=klass, gym_id=partner_gym if partner else home,
                                         home_gym_id=home)
    facts += [consumed, confirmed,
              BillingLineRecorded.new(caused_by=confirmed, occurred_at=at(4 * step), booking_id=booking_id,
                                      member_id=member, amount_cents=1500, currency="EUR"),
              AttendancePending.new(caused_by=confirmed, occurred_at=at(4 * step), booking_id=booking_id,
                                    member_id=member, class_id=klass)]
    if scenario != NOTIFICATION_NEVER_STARTED:
        facts.append(NotificationSent.new(caused_by=confirmed, occurred_at=at(5 * step), booking_id=booking_id,
                                          member_id=member, channel="EMAIL", template="booking-confirmed"))
    if scenario == ATTENDANCE_NEVER_COMPLETED:
        return facts
    attended = AttendanceRecorded.new(caused_by=confirmed, occurred_at=at(6 * step), booking_id=booking_id,
                                      member_id=member, class_id=klass, gym_id=partner_gym if partner else home,
                                      home_gym_id=home, partner_visit=partner)
    facts.append(attended)
    if not partner:
        return facts
    settlement = f"s-{booking_id}"
    obligation = SettlementObligationCalculated.new(
        caused_by=attended, occurred_at=at(7 * step), settlement_id=settlement, booking_id=booking_id,
        payer_gym_id=home, payee_gym_id=partner_gym, amount_cents=900, currency="EUR")
    payment = PaymentInitiated.new(caused_by=obligation, occurred_at=at(8 * step), payment_id=f"p-{booking_id}",
                                   settlement_id=settlement, payer_gym_id=home, payee_gym_id=partner_gym,
                                   amount_cents=900, currency="EUR")
    facts += [obligation, payment]
    if scenario == SETTLEMENT_STALLED:
        return facts
    if scenario == PAYMENT_FAILED:
        failed = PaymentFailed.new(caused_by=payment, occurred_at=at(9 * step), payment_id=f"p-{booking_id}",
                                   settlement_id=settlement, reason="DECLINED")
        return facts + [failed, SettlementEscalated.new(caused_by=failed, occurred_at=at(10 * step),
                                                        settlement_id=settlement, payment_id=f"p-{booking_id}",
                                                        reason="PAYMENT_FAILED")]
    settled = PaymentSettled.new(caused_by=payment, occurred_at=at(9 * step), payment_id=f"p-{booking_id}",
                                 settlement_id=settlement, amount_cents=900)
    return facts + [settled, SettlementConfirmed.new(caused_by=settled, occurred_at=at(10 * step),
                                                     settlement_id=settlement, payment_id=f"p-{booking_id}",
                                                     amount_cents=900)]


def mix(count: int, faults: dict[str, int], seed: int = 7) -> list[str]:
    """``count`` scenarios: the given number of each fault, the rest clean (every fourth a partner visit)."""
    chosen: list[str] = []
    for scenario, n in faults.items():
        chosen += [scenario] * n
    clean = count - len(chosen)
    if clean < 0:
        raise ValueError(f"{len(chosen)} faults do not fit in {count} bookings")
    chosen += [CLEAN_PARTNER if i % 4 == 3 else CLEAN for i in range(clean)]
    random.Random(seed).shuffle(chosen)
    return chosen
