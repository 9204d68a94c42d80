"""The observer engine: given these facts and ticks, expect exactly these anomalies."""

from __future__ import annotations

import itertools
import json
import random

import pytest

from opengym.agents.system import processes as build
from opengym.demo import scenarios
from opengym.models import ClassScheduled, InstrumentConsumed, NotificationSent
from opengym_streams.observer import InFlight, Observer, ObserverConfig, ObserverState, in_flight

T0 = 1_700_000_000_000
CONFIG = ObserverConfig(grace_ms=1000, orphan_grace_ms=5000, retention_ms=60_000, idle_ms=3_600_000)
FAR = T0 + 30 * 24 * 3_600_000


def observer() -> ObserverState:
    return ObserverState(Observer(build(), CONFIG))


def kinds(anomalies) -> list[tuple[str, str]]:
    return sorted((a.kind.value, a.process) for a in anomalies)


def run(events, ticks=(FAR,), state=None):
    state = state or observer()
    found = []
    for event in events:
        found += state.event(event).anomalies
    for now in ticks:
        found += state.tick(now)
    return state, found


@pytest.mark.parametrize("scenario", scenarios.SCENARIOS)
def test_each_scenario_reports_exactly_its_injected_fault(scenario):
    _, found = run(scenarios.booking("b-1", T0, scenario), ticks=(T0 + 3 * 24 * 3_600_000,))
    assert kinds(found) == sorted(scenarios.EXPECTED[scenario])


def test_clean_booking_reports_nothing_and_leaves_state_after_retention():
    events = scenarios.booking("b-1", T0, scenarios.CLEAN_PARTNER)
    closed_at = max(e.occurred_at for e in events)
    state, found = run(events, ticks=(T0 + 1000,))
    assert found == [] and "b-1" in state.states
    state.tick(closed_at + CONFIG.retention_ms - 1)
    assert "b-1" in state.states
    state.tick(closed_at + CONFIG.retention_ms)
    assert state.states == {}


def test_nested_timeout_is_reported_when_the_clock_passes_deadline_plus_grace_not_before():
    """The consume deadline runs from BookClassRequested, as Reservation's own deadline does."""
    events = scenarios.booking("b-1", T0, scenarios.NESTED_TIMEOUT)
    booked, request = events[0], events[1]
    deadline = booked.occurred_at + build().nested_pair("InstrumentConsumeProcess").deadline_ms
    state, found = run(events, ticks=(deadline + CONFIG.grace_ms - 1,))
    assert found == []
    found = state.tick(deadline + CONFIG.grace_ms)
    assert kinds(found) == [("NESTED_TIMEOUT", "InstrumentConsumeProcess")]
    anomaly = found[0]
    assert (anomaly.since, anomaly.deadline, anomaly.detected_at) == (booked.occurred_at, deadline,
                                                                      deadline + CONFIG.grace_ms)
    assert anomaly.causation_id == request.event_id and anomaly.correlation_id == "b-1"


def test_reply_before_request_joins_the_pair_without_an_orphan_report():
    events = scenarios.booking("b-1", T0, scenarios.CLEAN)
    request, reply = events[1], events[2]
    state = observer()
    assert state.event(reply).anomalies == []
    assert state.tick(reply.occurred_at + CONFIG.orphan_grace_ms - 1) == []
    state.event(request)
    rest = [e for e in events if e not in (request, reply)]
    _, found = run(rest, ticks=(FAR,), state=state)
    assert found == []


def test_reply_whose_request_never_comes_is_reported_after_the_orphan_grace():
    events = scenarios.booking("b-1", T0, scenarios.ORPHAN_REPLY)
    reply = events[1]
    state, found = run(events, ticks=(reply.occurred_at + CONFIG.orphan_grace_ms + CONFIG.grace_ms - 1,))
    assert found == []
    assert kinds(state.tick(reply.occurred_at + CONFIG.orphan_grace_ms + CONFIG.grace_ms)) == [
        ("REPLY_WITHOUT_REQUEST", "InstrumentConsumeProcess")]


def test_late_reply_is_reported_on_arrival_even_before_any_tick():
    events = scenarios.booking("b-1", T0, scenarios.LATE_REPLY)
    state = observer()
    found = [a for e in events for a in state.event(e).anomalies]
    assert kinds(found) == [("LATE_REPLY", "InstrumentConsumeProcess"), ("NESTED_TIMEOUT", "InstrumentConsumeProcess")]
    assert state.tick(FAR) == []


@pytest.mark.parametrize("scenario", [scenarios.CLEAN_PARTNER, scenarios.LATE_REPLY, scenarios.SETTLEMENT_STALLED,
                                      scenarios.NOTIFICATION_NEVER_STARTED, scenarios.DENIED])
def test_arrival_order_does_not_change_the_anomalies(scenario):
    events = scenarios.booking("b-1", T0, scenario)
    _, expected = run(events)
    expected_ids = sorted(a.anomaly_id for a in expected)
    rng = random.Random(42)
    orders = (itertools.permutations(events) if len(events) <= 6
              else (rng.sample(events, len(events)) for _ in range(200)))
    for order in orders:
        _, found = run(order)
        assert sorted(a.anomaly_id for a in found) == expected_ids, [type(e).__name__ for e in order]
        assert all(a.detected_at >= a.deadline for a in found), [type(e).__name__ for e in order]


def test_redelivered_facts_and_repeated_ticks_report_each_anomaly_once():
    events = scenarios.booking("b-1", T0, scenarios.SETTLEMENT_STALLED)
    state, found = run(events + events, ticks=(T0 + 200_000, T0 + 200_000, T0 + 200_001))
    assert kinds(found) == [("CHAIN_STALLED", "PartnerVisitSettlement")]
    assert all(state.event(e).duplicate for e in events)


def test_a_fact_redelivered_with_other_content_is_a_conflict_not_a_duplicate_also_after_a_restore():
    events = scenarios.booking("b-1", T0, scenarios.CLEAN_PARTNER)
    state, _ = run(events, ticks=())
    restored = observer()
    restored.states = json.loads(json.dumps(state.states))
    for engine in (state, restored):
        assert all(engine.event(e).duplicate and engine.event(e).conflict is None for e in events)
        later = events[0].model_copy(update={"occurred_at": events[0].occurred_at + 1})
        assert engine.event(later).duplicate  # announced again later (a responder decided it again)
        changed = events[0].model_copy(update={"causation_id": "another-cause"})
        outcome = engine.event(changed)
        assert outcome.conflict is not None and events[0].event_id in outcome.conflict and not outcome.duplicate


def test_restart_from_restored_state_reports_nothing_again():
    events = scenarios.booking("b-1", T0, scenarios.NESTED_TIMEOUT)
    state, found = run(events, ticks=(T0 + 10_000,))
    assert len(found) == 1
    restored = observer()
    restored.states = json.loads(json.dumps(state.states))
    _, again = run(events, ticks=(T0 + 10_000, T0 + 20_000), state=restored)
    assert again == []


def test_restart_that_lost_state_reproduces_the_same_anomaly_and_event_ids():
    events = scenarios.booking("b-1", T0, scenarios.NESTED_TIMEOUT)
    _, first = run(events, ticks=(T0 + 10_000,))
    _, second = run(events, ticks=(T0 + 50_000,))
    assert [(a.anomaly_id, a.event_id) for a in first] == [(a.anomaly_id, a.event_id) for a in second]


def test_downstream_start_after_its_deadline_is_reported_on_arrival():
    events = scenarios.booking("b-1", T0, scenarios.NOTIFICATION_NEVER_STARTED)
    confirmed = next(e for e in events if type(e).__name__ == "ReservationConfirmed")
    state, found = run(events, ticks=())
    assert found == []
    late = NotificationSent.new(caused_by=confirmed, occurred_at=confirmed.occurred_at + 31_000, booking_id="b-1",
                                member_id="m", channel="EMAIL", template="t")
    assert kinds(state.event(late).anomalies) == [("DOWNSTREAM_NOT_STARTED", "NotificationProcess")]


def test_late_reply_within_retention_joins_its_request_not_an_orphan():
    events = scenarios.booking("b-1", T0, scenarios.NESTED_TIMEOUT)
    request = events[1]
    state, found = run(events, ticks=(T0 + 10_000,))
    assert kinds(found) == [("NESTED_TIMEOUT", "InstrumentConsumeProcess")]
    late = InstrumentConsumed.new(caused_by=request, occurred_at=T0 + 20_000, booking_id="b-1", member_id="m",
                                  instrument_id="i", instrument_kind="CLASS_PACK", home_gym_id="g")
    assert kinds(state.event(late).anomalies) == [("LATE_REPLY", "InstrumentConsumeProcess")]


def test_open_transaction_without_deadline_leaves_state_when_idle():
    requested = scenarios.booking("b-1", T0)[0]
    state, _ = run([requested], ticks=(T0 + CONFIG.idle_ms - 1,))
    assert "b-1" in state.states
    state.tick(T0 + CONFIG.idle_ms)
    assert state.states == {}


def test_memory_stays_bounded_under_a_stream_of_completed_bookings():
    state = observer()
    for i in range(500):
        t = T0 + i * 1000
        for event in scenarios.booking(f"b-{i}", t, scenarios.CLEAN):
            state.event(event)
        state.tick(t)
    assert len(state.states) <= CONFIG.retention_ms // 1000 + 2


def test_events_outside_the_catalog_leave_no_state():
    event = ClassScheduled.new(correlation_id="class-1", class_id="class-1", gym_id="g", capacity=3, starts_at=T0)
    state = observer()
    assert state.event(event).relevant is False and state.states == {}


def test_round_trip_is_measured_once_per_pair():
    events = scenarios.booking("b-1", T0, scenarios.CLEAN)
    state = observer()
    trips = [t for e in events + events for t in state.event(e).round_trips]
    assert trips == [("InstrumentConsumeProcess", (events[2].occurred_at - events[1].occurred_at) / 1000)]


def test_in_flight_counts_open_transactions_and_oldest_age_per_process():
    state = observer()
    for event in scenarios.booking("b-1", T0, scenarios.CLEAN)[:2]:
        state.event(event)
    for event in scenarios.booking("b-2", T0, scenarios.CLEAN_PARTNER):
        state.event(event)
    state.tick(T0 + 2000)
    counts, oldest = in_flight(state.observer, state.states.values(), T0 + 2000)
    assert counts["Member Books a Class"] == 1
    assert oldest[("Member Books a Class", "InstrumentConsumeProcess")] == pytest.approx(2.0 - 0.02)
    assert oldest[("Member Books a Class", "BookingOrchestration")] == pytest.approx(2.0)


def test_a_downstream_process_not_started_yet_counts_as_open_since_its_trigger():
    state = observer()
    events = scenarios.booking("b-1", T0, scenarios.NOTIFICATION_NEVER_STARTED)
    for event in events:
        state.event(event)
    confirmed = next(e for e in events if type(e).__name__ == "ReservationConfirmed")
    counts, oldest = in_flight(state.observer, state.states.values(), confirmed.occurred_at + 10_000)
    assert counts["Member Books a Class"] == 1
    assert oldest[("Member Books a Class", "NotificationProcess")] == pytest.approx(10.0)


@pytest.mark.parametrize("scenario", scenarios.SCENARIOS)
def test_the_gauges_kept_per_state_until_a_deadline_agree_with_deriving_every_state_every_time(scenario):
    """InFlight derives a transaction again only when it changed or a deadline passed: at every step of
    every scenario (facts arriving, the clock moving past each deadline) it says what in_flight says."""
    state = observer()
    kept = InFlight(state.observer)
    events = scenarios.booking("b-1", T0, scenario) + scenarios.booking("b-2", T0 + 700, scenarios.CLEAN)
    events.sort(key=lambda e: e.occurred_at)
    now = T0
    derived = []
    for event in events:
        state.event(event)
        for now in (event.occurred_at, event.occurred_at + 400, event.occurred_at + 3_000):
            assert kept.measure(dict(state.states), now) == in_flight(state.observer, state.states.values(), now)
            derived.append(kept.derived)
    for now in range(now, now + 600_000, 7_000):
        state.tick(now)
        assert kept.measure(dict(state.states), now) == in_flight(state.observer, state.states.values(), now)
        derived.append(kept.derived)
    assert 0 in derived, "a measurement with nothing changed derives nothing"


def test_the_kept_gauges_derive_a_transaction_again_only_when_it_changed_or_its_deadline_passed():
    state = observer()
    kept = InFlight(state.observer)
    first = scenarios.booking("b-1", T0, scenarios.CLEAN)
    state.event(first[0])
    state.event(first[1])  # a request: its reply is due at a deadline
    kept.measure(dict(state.states), T0 + 100)
    assert kept.derived == 1
    kept.measure(dict(state.states), T0 + 200)
    assert kept.derived == 0, "nothing changed, no deadline passed"
    counts, oldest = kept.measure(dict(state.states), FAR)
    assert kept.derived == 1, "the reply's deadline passed"
    assert oldest[("Member Books a Class", "InstrumentConsumeProcess")] == 0.0, "overdue: anomalous, not in flight"
    state.event(first[2])
    kept.measure(dict(state.states), FAR + 1)
    assert kept.derived == 1, "a new fact"
