"""The runtime around every agent, through the real Faust agents (``agent.test_context()``, Avro on a mock
registry): admission, dead letters, dedupe, ticks, repartitioning."""

from __future__ import annotations

import pytest

import opengym.agents.entitlement as entitlement
import opengym.agents.notifications as notifications
import opengym.agents.reservation as reservation
from opengym import topics
from opengym_streams.monitoring.metrics import DUPLICATES, IGNORED
from opengym_streams.component import Agent, Component
from opengym.models import (BookClassRequested, InstrumentConsumed, InstrumentConsumeRequested,
                            InstrumentGrantRequested, ReservationConfirmed, ScheduleClassRequested, SeatHeld,
                            SeatHoldRequested)
from opengym_streams.tables import partition_of
from opengym_streams.testing import Scenario

T0 = 1_000_000


@pytest.fixture
def booking_agents(monkeypatch):
    monkeypatch.setenv("OPENGYM_BOOKING_TIMEOUT_MS", "5000")
    with Scenario(reservation.build(), now=T0, tier="agent", follow=True) as scenario:
        yield scenario
        assert_no_handler_errors(scenario)


def assert_no_handler_errors(scenario):
    crashed = [d.reason for d in scenario.dead_letters() if d.error_kind == "HANDLER_ERROR"]
    assert crashed == [], f"handlers raised: {crashed}"


def book(booking_id="b1", class_id="c1", **fields):
    return BookClassRequested.new(correlation_id=booking_id, booking_id=booking_id, member_id="m1",
                                  class_id=class_id, occurred_at=T0, **fields)


def schedule(class_id="c1", capacity=1):
    return ScheduleClassRequested.new(correlation_id=class_id, class_id=class_id, gym_id="gym-a", capacity=capacity,
                                      starts_at=T0 + 3_600_000, occurred_at=T0)


def test_a_booking_request_holds_a_seat_then_asks_entitlement(booking_agents):
    booking_agents.given(schedule())
    booking_agents.when(book())
    booking_agents.expect(("opengym.reservation.seats", "SeatHoldRequested"),
                          ("opengym.reservation.seat-replies", "SeatHeld"),
                          ("opengym.entitlement.requests", "InstrumentConsumeRequested", {"gym_id": "gym-a"}))
    assert booking_agents.last[0].key == "c1", "the hold is repartitioned by class"


def test_garbage_bytes_are_dead_lettered_and_the_stream_goes_on(booking_agents):
    booking_agents.given(schedule())
    out = booking_agents.when(book("junk"), value=b"\x00not avro at all", key=b"junk")
    out += booking_agents.when(book("plain"), value=b"plain garbage", key=None)
    assert [(p.event.error_kind, p.event.component) for p in out] == [("UNKNOWN_SCHEMA_ID", "reservation"),
                                                                       ("NOT_FRAMED", "reservation")]
    assert out[1].event.payload == b"plain garbage" and out[0].event.key == b"junk"
    assert {p.topic for p in out} == {"opengym.reservation.dlq"}
    assert [p.type for p in booking_agents.when(book("b2"))][0] == "SeatHoldRequested"


def test_contract_violations_are_dead_lettered_with_the_reason(booking_agents):
    wrong_correlation = BookClassRequested.new(correlation_id="other", booking_id="b3", member_id="m1",
                                               class_id="c1", occurred_at=T0)
    out = booking_agents.when(wrong_correlation)
    out += booking_agents.when(schedule(capacity=0))
    out += booking_agents.when(ReservationConfirmed.new(correlation_id="b4", booking_id="b4", member_id="m1",
                                                        class_id="c1", occurred_at=T0),
                               on=topics.RESERVATION_COMMANDS)
    assert [p.event.error_kind for p in out] == ["CONTRACT_VIOLATION"] * 3
    assert "correlation_id 'other' must equal booking_id 'b3'" in out[0].event.reason
    assert "capacity must be > 0" in out[1].event.reason
    assert "ReservationConfirmed does not belong on opengym.reservation.commands" in out[2].event.reason


@pytest.mark.parametrize("key, occurred_at, reason", [
    (None, T0, "the record has no key"),
    (b"somebody-else", T0, "the record key 'somebody-else' is not the event's correlation_id 'b5'"),
    (b"b5", T0 + 100 * 365 * 86_400_000, "ahead of the record's timestamp"),
    (b"b5", -1, "before 1970"),
])
def test_a_broken_envelope_is_dead_lettered_where_it_enters(booking_agents, key, occurred_at, reason):
    event = book("b5").model_copy(update={"occurred_at": occurred_at})
    out = booking_agents.when(event, key=key, timestamp_ms=T0)
    assert [(p.type, p.event.error_kind) for p in out] == [("DeadLetter", "CONTRACT_VIOLATION")]
    assert reason in out[0].event.reason


def test_a_redelivered_request_is_handled_once(booking_agents):
    request = book("b5")
    booking_agents.given(schedule())
    counter = DUPLICATES.labels("reservation", "BookClassRequested")
    before = counter._value.get()
    booking_agents.given(request, request)
    assert len(booking_agents.of_type("SeatHoldRequested")) == 1 and counter._value.get() == before + 1


def test_an_event_id_reused_with_other_content_is_dead_lettered_as_a_conflict_and_not_processed(booking_agents):
    booking_agents.given(schedule(), schedule("c2"))
    first = book("b6")
    forged = first.model_copy(update={"class_id": "c2"})
    booking_agents.given(first)
    out = booking_agents.when(forged)
    assert [(p.type, p.event.error_kind) for p in out] == [("DeadLetter", "DUPLICATE_CONFLICT")]
    assert [h.class_id for h in booking_agents.of_type("SeatHoldRequested")] == ["c1"]


def test_an_answer_decided_again_later_with_the_same_payload_is_a_redelivery_not_a_conflict(booking_agents):
    booking_agents.given(schedule())
    first = book("b8")
    booking_agents.given(first)
    again = first.model_copy(update={"occurred_at": first.occurred_at + 5_000})  # re-decided after a crash
    out = booking_agents.when(again)
    assert [p.type for p in out if p.type == "DeadLetter"] == []
    assert len([h for h in booking_agents.of_type("SeatHoldRequested") if h.booking_id == "b8"]) == 1


def test_a_huge_record_becomes_a_bounded_dead_letter(booking_agents):
    huge = b"\x00" + b"x" * 1_000_000
    (letter,) = [p.event for p in booking_agents.when(book("b7"), value=huge, key=b"b7")]
    assert letter.payload_size == len(huge) and letter.payload_truncated
    assert len(letter.payload) == 64 * 1024 and len(letter.payload_sha256) == 64


def test_seat_keeper_never_overbooks_a_class(booking_agents):
    booking_agents.given(schedule(capacity=2))
    for i in range(3):
        booking_agents.given(SeatHoldRequested.new(correlation_id=f"h{i}", booking_id=f"h{i}", member_id="m",
                                                   class_id="c1", occurred_at=T0))
    assert [e.booking_id for e in booking_agents.of_type("SeatHeld")] == ["h0", "h1"]
    assert [(e.booking_id, e.reason.value) for e in booking_agents.of_type("SeatRefused")] == [("h2", "CLASS_FULL")]
    assert len(booking_agents.of_type("ClassScheduled")) == 1


def test_a_tick_past_the_deadline_rejects_only_its_partitions_bookings_and_a_late_consume_is_released(monkeypatch):
    monkeypatch.setenv("OPENGYM_BOOKING_TIMEOUT_MS", "5000")
    monkeypatch.setenv("OPENGYM_DEADLINE_GRACE_MS", "1000")
    with Scenario(reservation.build(), now=T0, tier="agent") as saga:
        hold = saga.when(book("b6"))[0].event
        saga.when(SeatHeld.new(caused_by=hold, booking_id="b6", class_id="c1", gym_id="gym-a", starts_at=T0 + 10**6,
                               occurred_at=T0))
        from opengym_streams.models import ClockTicked

        home = partition_of("b6")
        # At the deadline a reply dated before it may still be in flight: the tick waits the grace out.
        due = ClockTicked.new(correlation_id="clock", now=T0 + 5000, component="reservation", occurred_at=T0 + 5000)
        saga.when(due, on=topics.RESERVATION_COMMANDS, partition=home)
        saga.expect_nothing()
        late = ClockTicked.new(correlation_id="clock", now=T0 + 6000, component="reservation", occurred_at=T0 + 6000)
        saga.when(late, on=topics.RESERVATION_COMMANDS, partition=(home + 1) % topics.PARTITIONS)
        saga.expect_nothing()
        saga.when(late, on=topics.RESERVATION_COMMANDS, partition=home)
        saga.expect(("opengym.reservation.events", "ReservationRejected", {"reason": "ENTITLEMENT_TIMEOUT"}),
                    ("opengym.reservation.seats", "SeatReleaseRequested"))
        saga.when(InstrumentConsumed.new(correlation_id="b6", booking_id="b6", member_id="m1", instrument_id="pack-1",
                                         instrument_kind="CLASS_PACK", home_gym_id="gym-b", credits_remaining=3,
                                         occurred_at=T0 + 6500))
        saga.expect(("opengym.entitlement.requests", "InstrumentReleaseRequested", {"reason": "LATE_CONSUME"}))


def test_a_tick_visits_only_the_bookings_still_waiting_not_the_finished_ones():
    with Scenario(reservation.build(), now=T0, tier="agent") as saga:
        saga.given(book("b-waiting"))  # its seat keeper has not answered: it waits (for its seat backstop)
        hold = saga.when(book("b-finished"))[0].event
        ask = saga.when(SeatHeld.new(caused_by=hold, booking_id="b-finished", class_id="c1", gym_id="gym-a",
                                     starts_at=T0 + 10**6, occurred_at=T0))[0].event
        saga.when(InstrumentConsumed.new(caused_by=ask, booking_id="b-finished", member_id="m1", instrument_id="p1",
                                         instrument_kind="CLASS_PACK", home_gym_id="gym-b", credits_remaining=3,
                                         occurred_at=T0 + 10))
        saga.expect(("opengym.reservation.events", "ReservationConfirmed"))
        runtime = saga.component.runtime
        table = runtime.tables["bookings"]

        def due(now):
            return {key for p in range(topics.PARTITIONS) for key in runtime.due(table, p, now)}

        assert set(table.keys()) == {"b-waiting", "b-finished"}, "the table keeps finished bookings (for dedupe)"
        assert due(10**13) == {"b-waiting"}, "a tick visits only the booking still waiting for its seat"
        assert due(T0 + 1) == set(), "nor that one before its seat wait runs out"


def test_notifications_sends_once_per_booking_when_confirmations_arrive_twice():
    first = ReservationConfirmed.new(correlation_id="b7", booking_id="b7", member_id="m1", class_id="c1", occurred_at=T0)
    with Scenario(notifications.build(), now=T0, tier="agent") as notify:
        notify.given(first, first, first.model_copy(update={"event_id": "another-id-same-booking"}))
        assert [n.booking_id for n in notify.of_type("NotificationSent")] == ["b7"]
        assert_no_handler_errors(notify)


def test_entitlement_holds_a_delayed_reply_until_a_tick_releases_it(monkeypatch):
    monkeypatch.setenv("OPENGYM_ENTITLEMENT_DELAY_SHARE", "1.0")
    monkeypatch.setenv("OPENGYM_ENTITLEMENT_DELAY_MS", "500")
    monkeypatch.setenv("OPENGYM_DEADLINE_GRACE_MS", "0")  # the release time to the millisecond, no grace after it
    with Scenario(entitlement.build(), now=T0, tier="agent", follow=True) as responder:
        responder.given(InstrumentGrantRequested.new(correlation_id="m9", instrument_id="pack-9", member_id="m9",
                                                     home_gym_id="gym-b", kind="CLASS_PACK", credits=2, occurred_at=T0),
                        InstrumentConsumeRequested.new(correlation_id="b9", booking_id="b9", member_id="m9",
                                                       class_id="c1", gym_id="gym-a", class_starts_at=2_000_000,
                                                       occurred_at=T0))
        assert responder.of_type("InstrumentConsumed") == []
        responder.when_time_passes(499)
        responder.expect_nothing()
        responder.when_time_passes(1)
        assert [(c.booking_id, c.credits_remaining) for c in responder.of_type("InstrumentConsumed")] == [("b9", 1)]
        assert_no_handler_errors(responder)


def test_entitlement_requests_are_repartitioned_by_member_and_bad_ones_dead_lettered():
    with Scenario(entitlement.build(), now=T0, tier="agent") as responder:
        out = responder.when(InstrumentConsumeRequested.new(correlation_id="b10", booking_id="b10", member_id="m10",
                                                            class_id="c1", gym_id="gym-a", class_starts_at=2_000_000,
                                                            occurred_at=T0))
        assert [(p.topic, p.key, p.type) for p in out] == [("opengym.entitlement.members", "m10",
                                                            "InstrumentConsumeRequested")]
        out = responder.when(InstrumentGrantRequested.new(correlation_id="m10", instrument_id="pack-0",
                                                          member_id="m10", home_gym_id="gym-b", kind="CLASS_PACK",
                                                          credits=0, occurred_at=T0))
        assert [(p.event.error_kind, "credits > 0" in p.event.reason) for p in out] == [("CONTRACT_VIOLATION", True)]


def test_an_event_that_makes_the_handler_raise_is_dead_lettered_and_the_next_one_handled():
    def fragile(state, event, now):
        if event.booking_id == "poison":
            raise ValueError("cannot handle this one")
        return {"seen": True}, []

    component = Component("reservation", topics=topics.CATALOG, agents=(
        Agent("fragile", reads=(topics.RESERVATION_COMMANDS,), table="t", handlers={"BookClassRequested": fragile}),))
    with Scenario(component, now=T0, tier="agent") as scenario:
        out = scenario.when(book("poison"))
        assert [(p.event.error_kind, p.event.correlation_id) for p in out] == [("HANDLER_ERROR", "poison")]
        assert "ValueError: cannot handle this one" in out[0].event.reason
        scenario.when(book("fine"))
        assert scenario.state("t", "fine") == {"seen": True}


def test_a_reply_for_a_booking_never_started_is_ignored_but_counted_once_nothing_unread_could_start_it(booking_agents):
    counter = IGNORED.labels("reservation", "InstrumentConsumed", "no BookingOrchestration here yet")
    before = counter._value.get()
    booking_agents.when(InstrumentConsumed.new(correlation_id="never", booking_id="never", member_id="m1",
                                               instrument_id="p", instrument_kind="CLASS_PACK", home_gym_id="gym-b",
                                               credits_remaining=1, occurred_at=T0))
    booking_agents.expect_nothing()
    assert counter._value.get() == before + 1


def test_a_type_the_topic_carries_but_the_agent_does_not_handle_is_ignored_and_counted(booking_agents):
    from opengym.models import InstrumentGranted

    counter = IGNORED.labels("reservation", "InstrumentGranted", "not handled by orchestrate")
    before = counter._value.get()
    booking_agents.when(InstrumentGranted.new(correlation_id="m1", instrument_id="p", member_id="m1",
                                              home_gym_id="gym-b", kind="CLASS_PACK", credits=1, occurred_at=T0))
    booking_agents.expect_nothing()
    assert counter._value.get() == before + 1
