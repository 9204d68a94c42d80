"""BookingOrchestration and the seat keeper as pure logic: given these events, expect these events."""

from __future__ import annotations

from agents.reservation import orchestration as booking
from agents.reservation import seats
from agents.reservation.orchestration import BookingConfig
from streams.app import remember
from streams.models import (BookClassRequested, ClockTicked, InstrumentConsumed, InstrumentConsumeDenied,
                            ScheduleClassRequested, SeatHeld, SeatHoldRequested, SeatRefused, SeatReleaseRequested)

CONFIG = BookingConfig(timeout_ms=5000)
T0 = 1_000_000


def types(events):
    return [e.type_name for e in events]


def feed(state, *events, now=T0):
    """Run events through the orchestration, as the runtime does (dedupe included)."""
    out = []
    for event in events:
        if state is not None and event.event_id in state.get("seen", ()):
            continue
        state, emitted = booking.on_event(state, event, now=now, config=CONFIG)
        state = remember(state, event.event_id) if state is not None else None
        out.extend(emitted)
    return state, out


def request(booking_id="b1", member="m1", class_id="c1"):
    return BookClassRequested.new(correlation_id=booking_id, booking_id=booking_id, member_id=member,
                                  class_id=class_id, occurred_at=T0)


def seat_held(cause):
    return SeatHeld.new(caused_by=cause, booking_id=cause.booking_id, class_id=cause.class_id, gym_id="gym-a",
                        starts_at=T0 + 3_600_000)


def consumed(booking_id="b1", at=T0 + 100):
    return InstrumentConsumed.new(correlation_id=booking_id, booking_id=booking_id, member_id="m1",
                                  instrument_id="pack-1", instrument_kind="CLASS_PACK", home_gym_id="gym-b",
                                  credits_remaining=4, occurred_at=at)


def tick(now):
    return ClockTicked.new(correlation_id="clock", now=now, component="reservation")


def test_happy_path_holds_a_seat_consumes_and_confirms():
    book = request()
    state, out = feed(None, book)
    assert types(out) == ["SeatHoldRequested"] and state["due_at"] == T0 + 5000
    state, out = feed(state, seat_held(out[0]))
    assert types(out) == ["InstrumentConsumeRequested"]
    assert out[0].gym_id == "gym-a" and out[0].class_starts_at == T0 + 3_600_000
    state, out = feed(state, consumed())
    assert types(out) == ["ReservationConfirmed"]
    confirmed = out[0]
    assert (confirmed.correlation_id, confirmed.gym_id, confirmed.home_gym_id, confirmed.instrument_id) == \
        ("b1", "gym-a", "gym-b", "pack-1")
    assert state["phase"] == booking.CONFIRMED and state["due_at"] is None


def test_full_class_rejects_at_once():
    state, out = feed(None, request())
    refused = SeatRefused.new(caused_by=out[0], booking_id="b1", class_id="c1", reason="CLASS_FULL")
    state, out = feed(state, refused)
    assert [(e.type_name, e.reason.value) for e in out] == [("ReservationRejected", "CLASS_FULL")]


def test_denial_rejects_with_the_mapped_reason_and_releases_the_seat():
    state, out = feed(None, request())
    state, out = feed(state, seat_held(out[0]))
    denied = InstrumentConsumeDenied.new(caused_by=out[0], booking_id="b1", member_id="m1",
                                         reason="CREDITS_EXHAUSTED", occurred_at=T0 + 100)
    state, out = feed(state, denied)
    assert types(out) == ["ReservationRejected", "SeatReleaseRequested"]
    assert out[0].reason.value == "CREDITS_EXHAUSTED" and out[1].class_id == "c1"


def test_deadline_rejects_with_entitlement_timeout_and_releases_the_seat():
    state, out = feed(None, request())
    state, _ = feed(state, seat_held(out[0]))
    state, out = feed(state, tick(T0 + 4999))
    assert out == []
    state, out = feed(state, tick(T0 + 5000))
    assert types(out) == ["ReservationRejected", "SeatReleaseRequested"]
    assert out[0].reason.value == "ENTITLEMENT_TIMEOUT" and out[0].correlation_id == "b1"
    assert not booking.is_due(state, T0 + 10_000, CONFIG)


def test_late_consume_after_timeout_is_released():
    state, out = feed(None, request())
    state, _ = feed(state, seat_held(out[0]))
    state, _ = feed(state, tick(T0 + 6000))
    late = consumed()
    state, out = feed(state, late, late)
    assert [(e.type_name, e.reason.value, e.instrument_id) for e in out] == \
        [("InstrumentReleaseRequested", "LATE_CONSUME", "pack-1")]


def test_a_consume_dated_after_the_deadline_is_late_before_any_tick_says_so():
    state, out = feed(None, request())
    state, _ = feed(state, seat_held(out[0]))
    state, out = feed(state, consumed(at=T0 + 5001))
    assert types(out) == ["ReservationRejected", "SeatReleaseRequested", "InstrumentReleaseRequested"]
    assert out[0].reason.value == "ENTITLEMENT_TIMEOUT" and out[2].reason.value == "LATE_CONSUME"
    state, out = feed(state, tick(T0 + 10_000))
    assert out == [], "the booking already ended"


def test_a_denial_dated_after_the_deadline_times_the_booking_out():
    state, out = feed(None, request())
    state, _ = feed(state, seat_held(out[0]))
    denied = InstrumentConsumeDenied.new(correlation_id="b1", booking_id="b1", member_id="m1",
                                         reason="CREDITS_EXHAUSTED", occurred_at=T0 + 7000)
    state, out = feed(state, denied)
    assert types(out) == ["ReservationRejected", "SeatReleaseRequested"]
    assert out[0].reason.value == "ENTITLEMENT_TIMEOUT"


def test_a_reply_read_before_the_replayed_seat_hold_still_decides_the_booking():
    # After a crash Reservation may recover "holding a seat" although it had already asked Entitlement;
    # the reply and the replayed SeatHeld then arrive in either order. The reply must not be dropped:
    # Entitlement dedupes the repeated request and would never answer it again (a lost credit).
    book = request()
    state, out = feed(None, book)
    held = seat_held(out[0])
    state, out = feed(state, consumed())
    assert out == [] and state["phase"] == booking.HOLDING_SEAT
    state, out = feed(state, held)
    assert types(out) == ["ReservationConfirmed"]
    assert out[0].gym_id == "gym-a" and out[0].instrument_id == "pack-1"


def test_an_early_denial_rejects_and_releases_the_seat_when_the_seat_hold_arrives():
    state, out = feed(None, request())
    held = seat_held(out[0])
    denied = InstrumentConsumeDenied.new(correlation_id="b1", booking_id="b1", member_id="m1",
                                         reason="NO_ENTITLEMENT", occurred_at=T0 + 50)
    state, out = feed(state, denied, held)
    assert types(out) == ["ReservationRejected", "SeatReleaseRequested"]
    assert out[0].reason.value == "NO_ENTITLEMENT"


def test_waiting_for_the_seat_keeper_is_not_bound_by_the_booking_deadline():
    state, out = feed(None, request())
    hold = out[0]
    state, out = feed(state, tick(T0 + 30_000))
    assert out == [] and state["phase"] == booking.HOLDING_SEAT
    state, out = feed(state, seat_held(hold))
    assert types(out) == ["InstrumentConsumeRequested"]
    state, out = feed(state, tick(T0 + 30_001))
    assert types(out) == ["ReservationRejected", "SeatReleaseRequested"]
    assert out[0].reason.value == "ENTITLEMENT_TIMEOUT"


def test_a_lost_seat_request_ends_the_booking_at_the_backstop_and_a_late_seat_is_given_back():
    state, out = feed(None, request())
    hold = out[0]
    state, out = feed(state, tick(T0 + CONFIG.seat_wait_ms - 1))
    assert out == []
    state, out = feed(state, tick(T0 + CONFIG.seat_wait_ms))
    assert [(e.type_name, e.reason.value) for e in out] == [("ReservationRejected", "UNKNOWN")]
    state, out = feed(state, seat_held(hold))
    assert types(out) == ["SeatReleaseRequested"]


def test_a_denial_after_the_timeout_changes_nothing():
    state, out = feed(None, request())
    state, out = feed(state, seat_held(out[0]))
    state, _ = feed(state, tick(T0 + 5000))
    denied = InstrumentConsumeDenied.new(caused_by=out[0], booking_id="b1", member_id="m1", reason="NO_ENTITLEMENT")
    assert feed(state, denied)[1] == []


def test_a_second_request_for_a_booking_under_way_is_ignored():
    state, _ = feed(None, request())
    state, out = feed(state, request())
    assert out == []


def test_timeouts_caused_by_one_tick_get_distinct_event_ids():
    a, out = feed(None, request("b1"))
    a, _ = feed(a, seat_held(out[0]))
    b, out = feed(None, request("b2"))
    b, _ = feed(b, seat_held(out[0]))
    shared = tick(T0 + 9000)
    _, out_a = feed(a, shared)
    _, out_b = feed(b, shared)
    assert out_a[0].event_id != out_b[0].event_id
    assert (out_a[0].correlation_id, out_b[0].correlation_id) == ("b1", "b2")


# ---- the seat keeper ----------------------------------------------------------------------------

def hold(booking_id, class_id="c1"):
    return SeatHoldRequested.new(correlation_id=booking_id, booking_id=booking_id, member_id="m", class_id=class_id)


def keep(state, *events):
    out = []
    for event in events:
        state, emitted = seats.on_event(state, event, now=T0)
        out.extend(emitted)
    return state, out


def scheduled(capacity):
    return ScheduleClassRequested.new(correlation_id="c1", class_id="c1", gym_id="gym-a", capacity=capacity,
                                      starts_at=T0)


def test_seat_keeper_refuses_beyond_capacity_and_refills_after_a_release():
    state, out = keep(None, scheduled(2), hold("b1"), hold("b2"), hold("b3"))
    assert [(e.type_name, getattr(e, "booking_id", None)) for e in out] == [
        ("ClassScheduled", None), ("SeatHeld", "b1"), ("SeatHeld", "b2"), ("SeatRefused", "b3")]
    release = SeatReleaseRequested.new(correlation_id="b1", booking_id="b1", class_id="c1")
    state, out = keep(state, release, hold("b4"))
    assert types(out) == ["SeatHeld"] and seats.seats_taken(state) == 2


def test_seat_keeper_refuses_an_unknown_class():
    state, out = keep(None, hold("b1", "nope"))
    assert [(e.type_name, e.reason.value) for e in out] == [("SeatRefused", "UNKNOWN_CLASS")] and state is None


def test_a_redelivered_hold_neither_takes_a_second_seat_nor_revives_a_released_one():
    first = hold("b1")
    state, out = keep(None, scheduled(5), first, first)
    assert seats.seats_taken(state) == 1 and out[1].event_id == out[2].event_id
    state, _ = keep(state, SeatReleaseRequested.new(correlation_id="b1", booking_id="b1", class_id="c1"))
    state, out = keep(state, first)
    assert out == [] and seats.seats_taken(state) == 0


# ---- the step table is what runs, and what the observer expects --------------------------------

WAITING_PHASE = {"HoldSeat": booking.HOLDING_SEAT, "ConsumeInstrument": booking.CONSUMING}


def test_every_reply_of_every_step_has_a_transition_in_the_phase_that_waits_for_it():
    for step in booking.STEPS:
        for reply in step.replies:
            assert (WAITING_PHASE[step.name], reply) in booking.TRANSITIONS, f"{step.name}: no transition for {reply}"


def test_the_nested_consume_step_matches_the_observers_catalog():
    from agents.catalog import CATALOG

    pairs = {pair.name: pair for t in CATALOG.transactions if t.orchestration for pair in t.orchestration.nested}
    consume = pairs["InstrumentConsumeProcess"]
    step = next(s for s in booking.STEPS if s.name == "ConsumeInstrument")
    assert (consume.participant, consume.request, tuple(consume.replies)) == \
        ("entitlement", step.request, step.replies)
