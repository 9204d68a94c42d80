"""The invariant checker: each rule holds on a clean run and names the booking when it is broken."""

from opengym.demo.facts import BookingFacts as Facts
from opengym.demo.invariants import Expectations, check_invariants
from opengym.models import (AttendancePending, AttendanceRecorded, BillingLineRecorded, BookClassRequested,
                            ClassScheduled, InstrumentConsumed, InstrumentConsumeRequested,
                            InstrumentGranted, InstrumentReleased, NotificationSent, ReservationConfirmed,
                            ReservationRejected, SettlementConfirmed, SettlementEscalated,
                            SettlementObligationCalculated)

T0 = 1_800_000_000_000


def scheduled(class_id="c1", capacity=10):
    return ClassScheduled.new(correlation_id=class_id, class_id=class_id, gym_id="g1", capacity=capacity,
                              starts_at=T0 + 10**8)


def grant(member="m1", kind="CLASS_PACK", instrument="i1"):
    return InstrumentGranted.new(correlation_id=instrument, instrument_id=instrument, member_id=member,
                                 home_gym_id="g1", kind=kind, credits=5 if kind == "CLASS_PACK" else None)


def request(booking, member="m1", class_id="c1", at=T0):
    return BookClassRequested.new(correlation_id=booking, occurred_at=at, booking_id=booking, member_id=member,
                                  class_id=class_id)


def confirmed_booking(booking, member="m1", class_id="c1", kind="CLASS_PACK", instrument="i1", at=T0,
                      latency=50, downstream=("billing", "pending", "notified")):
    req = request(booking, member, class_id, at)
    ask = InstrumentConsumeRequested.new(caused_by=req, booking_id=booking, member_id=member, class_id=class_id,
                                         gym_id="g1", class_starts_at=T0 + 10**8)
    used = InstrumentConsumed.new(caused_by=ask, booking_id=booking, member_id=member, instrument_id=instrument,
                                  instrument_kind=kind, home_gym_id="g1")
    done = ReservationConfirmed.new(caused_by=used, occurred_at=at + latency, booking_id=booking, member_id=member,
                                    class_id=class_id, gym_id="g1", home_gym_id="g1", instrument_id=instrument,
                                    instrument_kind=kind)
    events = [req, ask, used, done]
    if "billing" in downstream:
        events.append(BillingLineRecorded.new(caused_by=done, booking_id=booking, member_id=member,
                                              amount_cents=1500, currency="EUR"))
    if "pending" in downstream:
        events.append(AttendancePending.new(caused_by=done, booking_id=booking, member_id=member, class_id=class_id))
    if "notified" in downstream:
        events.append(NotificationSent.new(caused_by=done, booking_id=booking, member_id=member, channel="EMAIL",
                                           template="booking-confirmed"))
    return events


def rejected_booking(booking, reason="CLASS_FULL", member="m1", class_id="c1", at=T0, latency=20):
    req = request(booking, member, class_id, at)
    return [req, ReservationRejected.new(caused_by=req, occurred_at=at + latency, booking_id=booking,
                                         member_id=member, class_id=class_id, reason=reason)]


def clean_run():
    return [scheduled(), grant()] + confirmed_booking("b1") + confirmed_booking("b2") + rejected_booking("b3")


def test_a_clean_run_has_no_violations():
    assert check_invariants(Facts(clean_run())) == []


def test_a_booking_without_terminal_event_is_named():
    facts = Facts(clean_run() + [request("b4")])
    assert check_invariants(facts) == ["booking b4: no terminal event (expected exactly one)"]


def test_a_booking_both_confirmed_and_rejected_is_named():
    events = confirmed_booking("b1")
    events += [ReservationRejected.new(caused_by=events[0], booking_id="b1", member_id="m1", class_id="c1",
                                       reason="ENTITLEMENT_TIMEOUT")]
    violations = check_invariants(Facts([scheduled()] + events))
    assert any("booking b1: 2 terminal events" in v for v in violations)


def test_redelivered_events_count_once():
    events = clean_run()
    assert check_invariants(Facts(events + events)) == []
    assert Facts(events + events).redelivered["ReservationConfirmed"] == 2


def test_an_overbooked_class_is_named():
    events = [scheduled(capacity=1)] + confirmed_booking("b1") + confirmed_booking("b2")
    assert "class c1: 2 confirmed bookings, capacity 1" in check_invariants(Facts(events))


def test_a_consume_for_a_rejected_booking_must_be_released():
    events = [scheduled()] + rejected_booking("b9", reason="ENTITLEMENT_TIMEOUT")
    late = InstrumentConsumed.new(correlation_id="b9", booking_id="b9", member_id="m1", instrument_id="i1",
                                  instrument_kind="CLASS_PACK", home_gym_id="g1")
    violations = check_invariants(Facts(events + [late]))
    assert any(v.startswith("booking b9 (not confirmed): 1 consumed, 0 released") for v in violations)
    assert any(v.startswith("credits: net class-pack credits consumed 1 != confirmed class-pack bookings 0")
               for v in violations)
    release = InstrumentReleased.new(caused_by=late, booking_id="b9", member_id="m1", instrument_id="i1")
    assert check_invariants(Facts(events + [late, release, grant()])) == []


def test_each_confirmed_booking_needs_exactly_one_of_each_downstream_fact():
    events = [scheduled()] + confirmed_booking("b1", downstream=("billing", "pending"))
    assert check_invariants(Facts(events)) == [
        "booking b1 (confirmed): 0 NotificationSent, expected exactly one"]
    assert check_invariants(Facts(events), expect=Expectations(downstream=("BillingLineRecorded",
                                                                           "AttendancePending"))) == []
    extra = BillingLineRecorded.new(correlation_id="b1", booking_id="b1", member_id="m1", amount_cents=1500,
                                    currency="EUR")
    violations = check_invariants(Facts(events + [extra]))
    assert "booking b1 (confirmed): 2 BillingLineRecorded, expected exactly one" in violations


def test_downstream_facts_for_a_rejected_booking_are_violations():
    events = [scheduled()] + rejected_booking("b3")
    events.append(NotificationSent.new(correlation_id="b3", booking_id="b3", member_id="m1", channel="EMAIL",
                                       template="booking-confirmed"))
    assert check_invariants(Facts(events)) == ["booking b3 (not confirmed): 1 NotificationSent, expected none"]


def test_a_partner_visit_needs_one_obligation_with_one_outcome():
    events = [scheduled()] + confirmed_booking("b1")
    visit = AttendanceRecorded.new(correlation_id="b1", booking_id="b1", member_id="m1", class_id="c1",
                                   gym_id="g2", home_gym_id="g1", partner_visit=True)
    assert check_invariants(Facts(events + [visit])) == [
        "booking b1 (partner visit): 0 settlement obligations, expected exactly one"]
    owed = SettlementObligationCalculated.new(caused_by=visit, correlation_id="s1", settlement_id="s1",
                                              booking_id="b1", payer_gym_id="g1", payee_gym_id="g2",
                                              amount_cents=900, currency="EUR")
    assert check_invariants(Facts(events + [visit, owed])) == [
        "settlement s1 (booking b1): 0 outcomes (none), expected exactly one"]
    paid = SettlementConfirmed.new(caused_by=owed, settlement_id="s1", payment_id="p1", amount_cents=900)
    assert check_invariants(Facts(events + [visit, owed, paid])) == []
    escalated = SettlementEscalated.new(caused_by=owed, settlement_id="s1", reason="PAYMENT_FAILED")
    assert check_invariants(Facts(events + [visit, owed, paid, escalated])) == [
        "settlement s1 (booking b1): 2 outcomes (SettlementConfirmed, SettlementEscalated), expected exactly one"]


def test_only_the_named_bookings_are_checked():
    facts = Facts(clean_run() + [request("other-run")])
    assert check_invariants(facts, booking_ids=["b1", "b2", "b3"]) == []


def test_credits_remaining_must_match_the_grant_minus_net_uses():
    events = [scheduled(), grant()] + confirmed_booking("b1")
    consumed = next(e for e in events if e.type_name == "InstrumentConsumed")
    honest = consumed.model_copy(update={"credits_remaining": 4})
    assert check_invariants(Facts([e if e is not consumed else honest for e in events])) == []
    double_counted = consumed.model_copy(update={"credits_remaining": 3})
    assert check_invariants(Facts([e if e is not consumed else double_counted for e in events])) == [
        "instrument i1: Entitlement last reported [3] credits remaining, expected 4 (granted 5, net 1 used)"]


def test_a_redelivered_event_with_other_contents_is_named():
    events = [scheduled(), grant()] + confirmed_booking("b1")
    billing = next(e for e in events if e.type_name == "BillingLineRecorded")
    twin = billing.model_copy(update={"amount_cents": 9999})
    violations = check_invariants(Facts(events + [twin]))
    assert violations == [f"event {billing.event_id} (BillingLineRecorded, b1) published twice with different contents"]
