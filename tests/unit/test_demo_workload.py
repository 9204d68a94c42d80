"""The demo's workload plan: exact shares, deterministic by seed, seats and credits that make sense."""

from collections import Counter

import pytest

from opengym.demo.workload import (DEFAULT_SHARES, EXHAUSTED_PACK, EXHAUSTED_PACK_BOOKINGS, FULL_CLASS,
                                   NO_ENTITLEMENT, PARTNER_VISIT, UNKNOWN_CLASS, WorkloadConfig,
                                   booking_event, grant_events, intent_counts, plan_workload, schedule_events)


def test_intent_counts_split_the_total_exactly_by_share():
    counts = intent_counts(1000, DEFAULT_SHARES)
    assert sum(counts.values()) == 1000
    assert counts == {intent: round(1000 * share) for intent, share in DEFAULT_SHARES.items()}
    assert sum(intent_counts(7, DEFAULT_SHARES).values()) == 7


def test_same_seed_gives_the_same_plan_and_another_seed_another():
    one = plan_workload(WorkloadConfig(bookings=300, seed=3), run_id="r", now=1_000_000)
    two = plan_workload(WorkloadConfig(bookings=300, seed=3), run_id="r", now=1_000_000)
    other = plan_workload(WorkloadConfig(bookings=300, seed=4), run_id="r", now=1_000_000)
    assert one == two
    assert one.bookings != other.bookings


def test_run_id_names_every_id_so_runs_never_share_state():
    plan = plan_workload(WorkloadConfig(bookings=200), run_id="run42")
    ids = ([b.booking_id for b in plan.bookings] + [c.class_id for c in plan.classes]
           + [m.member_id for m in plan.members])
    assert all(i.startswith("run42-") for i in ids)
    assert len({b.booking_id for b in plan.bookings}) == 200


def test_the_default_plan_has_the_realistic_shares():
    plan = plan_workload(WorkloadConfig(), run_id="r")
    intents = plan.intents()
    assert len(plan.bookings) == 1000
    assert intents[PARTNER_VISIT] == 150 and intents[FULL_CLASS] == 120 and intents[EXHAUSTED_PACK] == 90


def test_partner_visits_book_at_another_gym_and_home_bookings_at_home():
    plan = plan_workload(WorkloadConfig(bookings=500), run_id="r")
    home = {m.member_id: m.home_gym_id for m in plan.members}
    gym_of = {c.class_id: c.gym_id for c in plan.classes}
    for booking in plan.bookings:
        if booking.intent == UNKNOWN_CLASS:
            assert booking.class_id not in gym_of
        elif booking.intent == PARTNER_VISIT:
            assert gym_of[booking.class_id] != home[booking.member_id]
        else:
            assert gym_of[booking.class_id] == home[booking.member_id]


def test_only_popular_classes_are_oversubscribed():
    plan = plan_workload(WorkloadConfig(bookings=600), run_id="r")
    wanted = Counter(b.class_id for b in plan.bookings)
    for gym_class in plan.classes:
        if gym_class.popular:
            assert gym_class.capacity < wanted[gym_class.class_id]
        else:
            assert gym_class.capacity >= wanted[gym_class.class_id]


def test_packs_run_out_only_for_the_exhausted_intent():
    plan = plan_workload(WorkloadConfig(bookings=600), run_id="r")
    members = {m.member_id: m for m in plan.members}
    per_member = Counter(b.member_id for b in plan.bookings)
    for member_id, n in per_member.items():
        member = members.get(member_id)
        intents = {b.intent for b in plan.bookings if b.member_id == member_id}
        if intents == {EXHAUSTED_PACK}:
            assert member.credits < n < 2 * EXHAUSTED_PACK_BOOKINGS
        elif intents == {NO_ENTITLEMENT}:
            assert member.kind is None
        elif member.kind == "CLASS_PACK":
            assert member.credits > n


def test_plan_events_fit_their_contracts_and_name_their_transaction():
    plan = plan_workload(WorkloadConfig(bookings=50), run_id="r")
    booking = booking_event(plan, plan.bookings[0])
    assert booking.correlation_id == booking.booking_id == plan.bookings[0].booking_id
    assert booking_event(plan, plan.bookings[0]).event_id == booking.event_id
    assert len(schedule_events(plan)) == len(plan.classes)
    assert len(grant_events(plan)) == sum(1 for m in plan.members if m.kind)


def test_zero_shares_are_refused():
    with pytest.raises(ValueError):
        intent_counts(10, {FULL_CLASS: 0.0})
