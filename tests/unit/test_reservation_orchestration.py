"""BookingOrchestration and the seat keeper as sagas: given these facts, when this event or this much time,
expect these events on these topics (Reservation's own runtime code, no Kafka)."""

from __future__ import annotations

import pytest

import opengym.agents.reservation as reservation
from opengym import topics
from opengym.agents.reservation import booking
from opengym.agents.system import SYSTEM
from opengym.models import (BookClassRequested, InstrumentConsumed, InstrumentConsumeDenied,
                            ScheduleClassRequested, SeatHeld, SeatHoldRequested, SeatRefused,
                            SeatReleaseRequested)
from opengym_streams.tables import partition_of
from opengym_streams.testing import Scenario

T0 = 1_000_000
EVENTS = topics.RESERVATION_EVENTS.name
SEATS = topics.RESERVATION_SEATS.name
REQUESTS = topics.ENTITLEMENT_REQUESTS.name


@pytest.fixture
def saga(monkeypatch):
    monkeypatch.setenv("OPENGYM_BOOKING_TIMEOUT_MS", "5000")
    with Scenario(reservation.build(), now=T0) as scenario:
        yield scenario


def request(booking_id="b1", member="m1", class_id="c1"):
    return BookClassRequested.new(correlation_id=booking_id, booking_id=booking_id, member_id=member,
                                  class_id=class_id, occurred_at=T0)


def seat_held(hold):
    return SeatHeld.new(caused_by=hold, booking_id=hold.booking_id, class_id=hold.class_id, gym_id="gym-a",
                        starts_at=T0 + 3_600_000, occurred_at=T0 + 10)


def consumed(ask=None, booking_id="b1", at=T0 + 100):
    fields = dict(booking_id=booking_id, member_id="m1", instrument_id="pack-1", instrument_kind="CLASS_PACK",
                  home_gym_id="gym-b", credits_remaining=4, occurred_at=at)
    if ask is not None:
        return InstrumentConsumed.new(caused_by=ask, **fields)
    return InstrumentConsumed.new(correlation_id=booking_id, **fields)


def denied(ask=None, reason="CREDITS_EXHAUSTED", at=T0 + 100):
    fields = dict(booking_id="b1", member_id="m1", reason=reason, occurred_at=at)
    if ask is not None:
        return InstrumentConsumeDenied.new(caused_by=ask, **fields)
    return InstrumentConsumeDenied.new(correlation_id="b1", **fields)


def booked_and_held(saga, booking_id="b1"):
    """Given a request and its seat: the orchestration waits for Entitlement (returns the consume request)."""
    hold = saga.when(request(booking_id))[0].event
    (ask,) = [p.event for p in saga.when(seat_held(hold))]
    return hold, ask


def test_happy_path_holds_a_seat_consumes_and_confirms(saga):
    saga.when(request())
    (hold,) = [p.event for p in saga.expect((SEATS, "SeatHoldRequested", {"booking_id": "b1", "class_id": "c1"}))]
    saga.when(seat_held(hold))
    (ask,) = [p.event for p in saga.expect((REQUESTS, "InstrumentConsumeRequested",
                                            {"gym_id": "gym-a", "class_starts_at": T0 + 3_600_000}))]
    saga.when(consumed(ask))
    saga.expect((EVENTS, "ReservationConfirmed", {"correlation_id": "b1", "gym_id": "gym-a", "home_gym_id": "gym-b",
                                                  "instrument_id": "pack-1"}))
    assert saga.state("bookings", "b1")["phase"] == booking.CONFIRMED


def test_full_class_rejects_at_once(saga):
    hold = saga.when(request())[0].event
    saga.when(SeatRefused.new(caused_by=hold, booking_id="b1", class_id="c1", reason="CLASS_FULL"))
    saga.expect((EVENTS, "ReservationRejected", {"reason": "CLASS_FULL"}))


def test_denial_rejects_with_the_mapped_reason_and_releases_the_seat(saga):
    _, ask = booked_and_held(saga)
    saga.when(denied(ask))
    saga.expect((EVENTS, "ReservationRejected", {"reason": "CREDITS_EXHAUSTED"}),
                (SEATS, "SeatReleaseRequested", {"class_id": "c1"}))


def test_deadline_rejects_with_entitlement_timeout_and_releases_the_seat(saga):
    booked_and_held(saga)
    saga.when_time_passes(4999)
    saga.expect_nothing()
    saga.when_time_passes(1)
    saga.expect((EVENTS, "ReservationRejected", {"reason": "ENTITLEMENT_TIMEOUT", "correlation_id": "b1"}),
                (SEATS, "SeatReleaseRequested"))
    saga.when_time_passes(10_000)
    saga.expect_nothing()


def test_late_consume_after_timeout_is_released_once(saga):
    _, ask = booked_and_held(saga)
    saga.when_time_passes(6000)
    late = consumed(ask)
    saga.when(late)
    saga.expect((REQUESTS, "InstrumentReleaseRequested", {"reason": "LATE_CONSUME", "instrument_id": "pack-1"}))
    saga.when(late)
    saga.expect_nothing()


def test_a_consume_dated_after_the_deadline_is_late_before_any_tick_says_so(saga):
    _, ask = booked_and_held(saga)
    saga.when(consumed(ask, at=T0 + 5001))
    saga.expect((EVENTS, "ReservationRejected", {"reason": "ENTITLEMENT_TIMEOUT"}), (SEATS, "SeatReleaseRequested"),
                (REQUESTS, "InstrumentReleaseRequested", {"reason": "LATE_CONSUME"}))
    saga.when_time_passes(10_000)
    saga.expect_nothing()


def test_a_denial_dated_after_the_deadline_times_the_booking_out(saga):
    _, ask = booked_and_held(saga)
    saga.when(denied(ask, at=T0 + 7000))
    saga.expect((EVENTS, "ReservationRejected", {"reason": "ENTITLEMENT_TIMEOUT"}), (SEATS, "SeatReleaseRequested"))


def test_a_reply_read_before_the_replayed_seat_hold_still_decides_the_booking(saga):
    # After a crash Reservation may recover "holding a seat" although it had already asked Entitlement;
    # the reply and the replayed SeatHeld then arrive in either order. The reply must not be dropped.
    hold = saga.when(request())[0].event
    saga.when(consumed())
    saga.expect_nothing()
    assert saga.state("bookings", "b1")["phase"] == booking.HOLDING_SEAT
    saga.when(seat_held(hold))
    saga.expect((EVENTS, "ReservationConfirmed", {"gym_id": "gym-a", "instrument_id": "pack-1"}))


def test_an_early_denial_rejects_and_releases_the_seat_when_the_seat_hold_arrives(saga):
    hold = saga.when(request())[0].event
    saga.given(denied(reason="NO_ENTITLEMENT", at=T0 + 50))
    saga.when(seat_held(hold))
    saga.expect((EVENTS, "ReservationRejected", {"reason": "NO_ENTITLEMENT"}), (SEATS, "SeatReleaseRequested"))


def test_waiting_for_the_seat_keeper_is_not_bound_by_the_booking_deadline(saga):
    hold = saga.when(request())[0].event
    saga.when_time_passes(30_000)
    saga.expect_nothing()
    assert saga.state("bookings", "b1")["phase"] == booking.HOLDING_SEAT
    saga.when(seat_held(hold))
    saga.expect((REQUESTS, "InstrumentConsumeRequested"))
    saga.when_time_passes(1)
    saga.expect((EVENTS, "ReservationRejected", {"reason": "ENTITLEMENT_TIMEOUT"}), (SEATS, "SeatReleaseRequested"))


def test_a_lost_seat_request_ends_the_booking_at_the_backstop_and_a_late_seat_is_given_back(saga):
    hold = saga.when(request())[0].event
    seat_wait = booking.BookingConfig.from_env().seat_wait_ms
    saga.when_time_passes(seat_wait - 1)
    saga.expect_nothing()
    saga.when_time_passes(1)
    saga.expect((EVENTS, "ReservationRejected", {"reason": "UNKNOWN"}))
    saga.when(seat_held(hold))
    saga.expect((SEATS, "SeatReleaseRequested"))


def test_a_denial_after_the_timeout_changes_nothing(saga):
    _, ask = booked_and_held(saga)
    saga.when_time_passes(5000)
    saga.when(denied(ask, reason="NO_ENTITLEMENT"))
    saga.expect_nothing()


def test_a_second_request_for_a_booking_under_way_is_ignored(saga):
    saga.given(request())
    saga.when(request())
    saga.expect_nothing()


def test_timeouts_caused_by_one_tick_get_distinct_event_ids(saga):
    booked_and_held(saga, "b1")
    booked_and_held(saga, "b2")
    rejected = [p.event for p in saga.when_time_passes(9000) if p.type == "ReservationRejected"]
    assert sorted(e.correlation_id for e in rejected) == ["b1", "b2"]
    assert len({e.event_id for e in rejected}) == 2


def test_a_replayed_trigger_after_a_lost_state_asks_again_and_gets_the_same_answer():
    # The booking's state and the seat keeper's answer live on different workers: the booking lost its
    # state in a crash, the class did not. The re-sent hold is answered with the very SeatHeld it got.
    with Scenario(reservation.build(), now=T0, follow=True) as saga:
        saga.given(ScheduleClassRequested.new(correlation_id="c1", class_id="c1", gym_id="gym-a", capacity=1,
                                              starts_at=T0 + 3_600_000, occurred_at=T0))
        book = request()
        first = saga.when(book)
        saga.forget("bookings")  # the crash: the booking's state is gone, the class's is not
        again = saga.when(book)
        assert [p.event for p in again] == [p.event for p in first]
        assert [p.type for p in again] == ["SeatHoldRequested", "SeatHeld", "InstrumentConsumeRequested"]


# ---- the seat keeper ----------------------------------------------------------------------------

def hold(booking_id, class_id="c1"):
    return SeatHoldRequested.new(correlation_id=booking_id, booking_id=booking_id, member_id="m", class_id=class_id,
                                 occurred_at=T0)


def scheduled(capacity):
    return ScheduleClassRequested.new(correlation_id="c1", class_id="c1", gym_id="gym-a", capacity=capacity,
                                      starts_at=T0, occurred_at=T0)


def keep(saga, *events):
    out = []
    for event in events:
        out += saga.when(event, on=topics.RESERVATION_SEATS)
    return out


def test_seat_keeper_refuses_beyond_capacity_and_refills_after_a_release(saga):
    out = keep(saga, scheduled(2), hold("b1"), hold("b2"), hold("b3"))
    assert [(p.type, getattr(p.event, "booking_id", None)) for p in out] == [
        ("ClassScheduled", None), ("SeatHeld", "b1"), ("SeatHeld", "b2"), ("SeatRefused", "b3")]
    out = keep(saga, SeatReleaseRequested.new(correlation_id="b1", booking_id="b1", class_id="c1", occurred_at=T0),
               hold("b4"))
    assert [p.type for p in out] == ["SeatHeld"] and len(saga.state("classes", "c1")["held"]) == 2


def test_seat_keeper_refuses_an_unknown_class(saga):
    out = keep(saga, hold("b1", "nope"))
    assert [(p.type, p.event.reason.value) for p in out] == [("SeatRefused", "UNKNOWN_CLASS")]


def test_a_redelivered_hold_neither_takes_a_second_seat_nor_revives_a_released_one(saga):
    first = hold("b1")
    out = keep(saga, scheduled(5), first, first)
    assert len(saga.state("classes", "c1")["held"]) == 1 and out[1].event == out[2].event
    keep(saga, SeatReleaseRequested.new(correlation_id="b1", booking_id="b1", class_id="c1", occurred_at=T0))
    assert keep(saga, first) == [] and saga.state("classes", "c1")["held"] == []


# ---- the step table is what runs, and what the observer expects --------------------------------

def test_the_observer_reads_the_consume_and_release_pairs_from_the_same_step_table():
    orchestration = SYSTEM.catalog.transactions[0].orchestration
    assert orchestration.name == "BookingOrchestration"
    pairs = {pair.name: pair for pair in orchestration.nested}
    consume = pairs["InstrumentConsumeProcess"]
    step = next(s for s in orchestration.steps if s.name == "ConsumeInstrument")
    assert (consume.participant, consume.request, consume.replies, consume.deadline_ms, consume.deadline_from) == \
        ("entitlement", step.request, step.reply_names, step.deadline_ms, "trigger")
    assert pairs["InstrumentReleaseProcess"].compensation
    assert "HoldSeat" not in {p.name for p in pairs.values()}, "a step inside the owner is not a nested process"


def test_the_deadline_has_one_source(monkeypatch):
    monkeypatch.setenv("OPENGYM_BOOKING_TIMEOUT_MS", "777")
    assert SYSTEM.processes().nested_pair("InstrumentConsumeProcess").deadline_ms == 777
    with Scenario(reservation.build(), now=T0) as saga:
        booked_and_held(saga)
        saga.when_time_passes(776)
        saga.expect_nothing()
        saga.when_time_passes(1)
        saga.expect((EVENTS, "ReservationRejected", {"reason": "ENTITLEMENT_TIMEOUT"}), (SEATS, "SeatReleaseRequested"))


def test_the_clock_ticks_only_a_partition_with_a_booking_due_and_only_once_it_is_due(saga):
    """An idle Reservation sends no ticks (each would be published, read back, handled and committed); a
    booking waiting for Entitlement wants them on its own partition from its deadline on, until decided."""
    clock = topics.RESERVATION_COMMANDS

    def ticked_at(now):
        return [p for p in range(clock.partitions) if saga.processor.tick_wanted(p, now)]

    saga.when_time_passes(1)  # the first tick after a start rebuilds the due index
    assert ticked_at(saga.now) == []
    booked_and_held(saga)
    assert ticked_at(T0 + 4999) == []
    assert ticked_at(T0 + 5000) == [partition_of("b1", clock.partitions)]
    saga.when_time_passes(5000)
    saga.expect((EVENTS, "ReservationRejected", {"reason": "ENTITLEMENT_TIMEOUT"}), (SEATS, "SeatReleaseRequested"))
    assert ticked_at(saga.now + 60_000) == [], "decided: nothing on the partition wants a tick any more"
