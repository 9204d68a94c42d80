"""End to end: the seven components as real worker processes on the real broker and registry.

The workers start once for this module, on the module's own topics (a fresh OPENGYM_TOPIC_PREFIX);
each test drives its own workload with its own ids, and checks the invariants over its own bookings.
"""

from __future__ import annotations

import uuid
from collections import Counter

import pytest

from opengym import topics
from opengym_streams.codec import AvroCodec
from opengym_streams.demo.driver import driver_producer
from opengym.demo.facts import DOWNSTREAM_TYPES, symbol
from opengym.demo.summary import summarize
from opengym.demo.workload import PARTNER_VISIT
from opengym_streams.event import now_ms
from opengym_streams.kafka import create_topics
from tests.conftest import wait_for
from tests.integration.hostile_support import components
from tests.integration.e2e_support import (MAX_IN_FLIGHT, TARGET_LATENCY_MS, committed_behind,
                                          delete_prefixed_topics, drive, sample_event, settle, small_plan,
                                          start_run, start_workers)

COMPONENT_INPUTS = {
    "reservation": (topics.RESERVATION_COMMANDS, topics.ENTITLEMENT_EVENTS),
    "entitlement": (topics.ENTITLEMENT_REQUESTS,),
    "tenant-billing": (topics.RESERVATION_EVENTS,),
    "attendance": (topics.RESERVATION_EVENTS, topics.ATTENDANCE_COMMANDS),
    "notifications": (topics.RESERVATION_EVENTS,),
    "platform-billing": (topics.ATTENDANCE_EVENTS, topics.FINANCE_EVENTS),
    "finance": (topics.PLATFORM_BILLING_EVENTS,),
}
"""The contract topics each component consumes (what the choreography says it reacts to)."""


@pytest.fixture(scope="module")
def e2e_prefix(stack):
    """The module's own copy of every catalog topic (``topic_prefix``, for a module's workers)."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPENGYM_TOPIC_PREFIX", prefix)
        create_topics()
        yield prefix
    delete_prefixed_topics(prefix)


@pytest.fixture(scope="module")
def workers(e2e_prefix, tmp_path_factory):
    supervisor = start_workers(tmp_path_factory.mktemp("workers"), e2e_prefix)
    yield supervisor
    supervisor.stop()


@pytest.fixture(scope="module")
def baseline(workers):
    """A realistic workload of 200 bookings: full classes, exhausted packs, partner visits, late
    consumes, failed payments."""
    run = drive(small_plan(200, seed=11), rate=60)
    yield run
    run.collector.close()


def test_every_booking_ends_in_exactly_one_terminal_event_and_no_class_is_overbooked(baseline):
    assert baseline.violations() == []
    outcomes = summarize(baseline.facts, baseline.booking_ids).outcomes
    assert sum(outcomes.values()) == 200 and "no terminal event" not in outcomes
    assert outcomes["rejected:CLASS_FULL"] > 0, outcomes
    seated = Counter(e.class_id for e in baseline.facts.of("ReservationConfirmed"))
    full = Counter(e.class_id for e in baseline.facts.of("ReservationRejected") if symbol(e.reason) == "CLASS_FULL")
    held_then_rejected = Counter(e.class_id for e in baseline.facts.of("ReservationRejected")
                                 if symbol(e.reason) not in ("CLASS_FULL", "UNKNOWN_CLASS"))
    for gym_class in baseline.plan.classes:
        assert seated[gym_class.class_id] <= gym_class.capacity
        if full[gym_class.class_id]:
            # A class refuses a booking only while its seats are taken (by confirmed bookings, or
            # held by bookings still waiting for Entitlement and rejected later).
            assert seated[gym_class.class_id] + held_then_rejected[gym_class.class_id] >= gym_class.capacity, \
                (gym_class, seated[gym_class.class_id], held_then_rejected[gym_class.class_id])


def test_net_credits_consumed_equal_confirmed_class_pack_bookings_and_late_consumes_are_released(baseline):
    summary = summarize(baseline.facts, baseline.booking_ids)
    assert summary.credits["net_class_pack_credits"] == summary.credits["confirmed_class_pack_bookings"] > 0
    assert summary.outcomes["rejected:CREDITS_EXHAUSTED"] > 0
    timed_out = {e.booking_id for e in baseline.facts.of("ReservationRejected")
                 if symbol(e.reason) == "ENTITLEMENT_TIMEOUT"}
    late = {e.booking_id for e in baseline.facts.of("InstrumentConsumed")} & timed_out
    released = {e.booking_id for e in baseline.facts.of("InstrumentReleased")}
    assert late, f"no consume arrived after its deadline (timeouts: {len(timed_out)})"
    assert late <= released, f"late consumes not released: {sorted(late - released)}"
    reasons = {e.booking_id: symbol(e.reason) for e in baseline.facts.of("InstrumentReleaseRequested")}
    assert all(reasons.get(b) == "LATE_CONSUME" for b in late)


def test_partner_visits_settle_confirmed_or_escalated_when_payments_fail(baseline):
    summary = summarize(baseline.facts, baseline.booking_ids)
    partner_visits = sum(1 for e in baseline.facts.of("AttendanceRecorded")
                         if e.partner_visit and e.booking_id in set(baseline.booking_ids))
    planned = sum(1 for b in baseline.plan.bookings if b.intent == PARTNER_VISIT)
    assert 0 < partner_visits <= planned
    assert summary.settlements["obligations"] == partner_visits
    assert summary.settlements["confirmed"] > 0 and summary.settlements["escalated"] > 0, summary.settlements
    assert summary.settlements["confirmed"] + summary.settlements["escalated"] == partner_visits
    assert summary.settlements["escalated"] == summary.settlements["payments failed"]


def test_downstream_facts_happen_once_per_confirmed_booking_when_events_are_delivered_twice(baseline):
    facts = baseline.facts
    confirmed = facts.of("ReservationConfirmed")
    requests = list(facts.requests(baseline.booking_ids).values())
    replayed = confirmed[:40] + requests[:40]
    codec, producer = AvroCodec(), driver_producer()
    for event in replayed:
        name = topics.topic_name(topics.topic_for_event(event.avro_name))
        producer.produce(name, key=event.correlation_id.encode(), value=codec.encode(event, name))
    assert producer.flush(30) == 0
    for component in ("tenant-billing", "attendance", "notifications"):
        wait_for(lambda c=component: committed_behind(c, topics.RESERVATION_EVENTS) == 0, 60,
                 f"{component} to commit past the replayed ReservationConfirmed events",
                 seen=lambda c=component: committed_behind(c, topics.RESERVATION_EVENTS))
    wait_for(lambda: committed_behind("reservation", topics.RESERVATION_COMMANDS) == 0, 60,
             "reservation to commit past the replayed BookClassRequested events")
    baseline.collector.drain()

    assert baseline.violations() == []
    ours = set(baseline.booking_ids)
    confirmed_ids = {e.booking_id for e in confirmed}
    replayed_confirmations = Counter(e.booking_id for e in replayed if e.type_name == "ReservationConfirmed")

    def deliveries(type_name: str) -> Counter:
        counts = Counter()
        for event in facts.of(type_name):
            if event.booking_id in ours:
                counts[event.booking_id] += facts.deliveries[event.event_id]
        return counts

    for type_name in DOWNSTREAM_TYPES:
        assert deliveries(type_name) == Counter({b: 1 for b in confirmed_ids}), f"{type_name} not once each"
    assert deliveries("ReservationRejected") == Counter({b: 1 for b in ours - confirmed_ids})
    assert deliveries("ReservationConfirmed") == Counter({b: 1 + replayed_confirmations[b] for b in confirmed_ids})


def test_a_worker_killed_mid_workload_resumes_from_its_changelog(workers):
    plan = small_plan(150, seed=23)
    run = start_run(plan)
    killed_at: dict[str, int] = {}

    def kill_reservation_then_entitlement():
        sent = len(run.driver.sent_bookings)
        for component, after in (("reservation", 50), ("entitlement", 100)):
            if sent >= after and component not in killed_at:
                workers.kill(component)
                killed_at[component] = now_ms()
                workers.workers[component].start()

    run.driver.seed()
    run.driver.send_bookings(30, on_tick=kill_reservation_then_entitlement, max_in_flight=MAX_IN_FLIGHT,
                            target_latency_ms=TARGET_LATENCY_MS)
    try:
        settle(run, 90)
        assert list(killed_at) == ["reservation", "entitlement"]
        assert run.violations() == []
        requests = run.facts.requests(run.booking_ids)
        answered = {e.booking_id: e.occurred_at for e in run.facts.of("ReservationConfirmed", "ReservationRejected")}
        kill = killed_at["reservation"]
        across = [b for b, r in requests.items() if r.occurred_at < kill < answered[b]]
        assert across, "no booking was in flight when Reservation was killed"
        assert workers.workers["reservation"].starts == 2 and workers.workers["reservation"].alive()
        assert workers.workers["entitlement"].starts == 2 and workers.workers["entitlement"].alive()
        assert summarize(run.facts, run.booking_ids).outcomes["confirmed"] > 0
    finally:
        run.collector.close()
        workers.wait_ready(120, ("reservation", "entitlement"))


def test_a_sigkill_in_the_middle_of_a_backlog_loses_and_doubles_nothing(workers):
    """The whole workload written at once; when a third of it is answered, Reservation, Entitlement and
    Tenant Billing are SIGKILLed and restarted. Their outputs since the last commit are on the broker,
    their state changes are not (written behind, once per commit): each replays its inputs from the
    committed offsets, on its own schedule, so replies may be read again before the requests they
    answer. Nothing may be lost or doubled: one terminal per booking, each downstream fact once (by
    event id), no overbooking, credits balanced."""
    plan = small_plan(240, seed=37)
    run = start_run(plan)
    victims = ("reservation", "entitlement", "tenant-billing")
    starts = {component: workers.workers[component].starts for component in victims}
    killed_at: dict[str, int] = {}

    def kill_when_a_third_is_answered():
        if killed_at:
            return
        answered = len(run.facts.of("ReservationConfirmed", "ReservationRejected"))
        if answered >= len(run.booking_ids) // 3:
            for component in victims:
                workers.kill(component)
                killed_at[component] = now_ms()
            for component in victims:
                workers.workers[component].start()

    run.driver.seed()
    run.driver.send_bookings(0)  # as fast as the producer takes them: a backlog
    try:
        settle(run, 180, on_tick=kill_when_a_third_is_answered)
        assert list(killed_at) == list(victims), "the backlog drained before a third was answered"
        answered = {e.booking_id: e.occurred_at for e in run.facts.of("ReservationConfirmed", "ReservationRejected")}
        assert any(t > killed_at["reservation"] for t in answered.values()), "nothing was left after the kill"
        assert run.violations() == []
        ours = set(run.booking_ids)
        confirmed = {e.booking_id for e in run.facts.of("ReservationConfirmed") if e.booking_id in ours}
        assert confirmed, "no booking was confirmed"
        for type_name in ("ReservationConfirmed", "ReservationRejected", *DOWNSTREAM_TYPES):
            ids = Counter(e.booking_id for e in run.facts.of(type_name) if e.booking_id in ours)
            assert all(n == 1 for n in ids.values()), f"{type_name} with two event ids: {ids.most_common(3)}"
        for type_name in DOWNSTREAM_TYPES:
            assert {e.booking_id for e in run.facts.of(type_name) if e.booking_id in ours} == confirmed, \
                f"{type_name} not once per confirmed booking"
        for component in victims:
            assert workers.workers[component].starts == starts[component] + 1
            assert workers.workers[component].alive()
    finally:
        run.collector.close()
        workers.wait_ready(120, victims)


def test_garbage_and_contract_violations_land_in_each_dead_letter_topic_and_the_flow_goes_on(workers):
    run = start_run(small_plan(30, seed=5))
    codec, producer = AvroCodec(), driver_producer()
    poisoned: dict[str, list[tuple[str, str]]] = {}
    built = components()
    for component, sources in COMPONENT_INPUTS.items():
        # A type the component handles: one it does not is counted as ignored without being decoded.
        handled = {name for agent in built[component].agents for name in agent.handlers}
        for topic in sources:
            name = topics.topic_name(topic)
            key = f"poison-{uuid.uuid4().hex[:8]}"
            producer.produce(name, key=key.encode(), value=b"not avro at all: \xff\xfe garbage")
            violating = sample_event(topic, handled, correlation_id=key)
            producer.produce(name, key=key.encode(), value=codec.encode(violating, name))
            poisoned.setdefault(component, []).append((name, key))
    assert producer.flush(30) == 0

    def letters():
        found = Counter()
        for letter in run.facts.of("DeadLetter"):
            found[(letter.component, letter.source_topic, letter.error_kind)] += 1
        return found

    expected = {(c, name, kind) for c, pairs in poisoned.items() for name, _ in pairs
                for kind in ("NOT_FRAMED", "CONTRACT_VIOLATION")}

    def all_dead_lettered():
        run.collector.poll(0.2)
        return expected <= set(letters())

    wait_for(all_dead_lettered, 60, "a NOT_FRAMED and a CONTRACT_VIOLATION dead letter per component and input topic",
             seen=lambda: sorted(expected - set(letters())))

    run.driver.seed()
    run.driver.send_bookings(30, max_in_flight=MAX_IN_FLIGHT, target_latency_ms=TARGET_LATENCY_MS)
    try:
        settle(run, 90)
        assert run.violations() == []
        assert summarize(run.facts, run.booking_ids).outcomes["confirmed"] > 0
        assert not workers.dead()
    finally:
        run.collector.close()
