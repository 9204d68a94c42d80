"""Entitlement's rules as pure logic: grants, consume and release, idempotent per booking."""

from __future__ import annotations

from agents.entitlement import logic
from agents.entitlement.logic import EntitlementConfig
from streams.models import (ClockTicked, InstrumentConsumeRequested, InstrumentGrantRequested,
                            InstrumentReleaseRequested)

NOW = 1_000_000
DAY = 86_400_000
PLAIN = EntitlementConfig()


def grant_pack(instrument_id="pack-1", credits=2, member="m1"):
    return InstrumentGrantRequested.new(correlation_id=member, instrument_id=instrument_id, member_id=member,
                                        home_gym_id="gym-b", kind="CLASS_PACK", credits=credits)


def grant_unlimited(instrument_id="unl-1", valid_from=None, valid_until=NOW + DAY, member="m1"):
    return InstrumentGrantRequested.new(correlation_id=member, instrument_id=instrument_id, member_id=member,
                                        home_gym_id="gym-b", kind="UNLIMITED", valid_from=valid_from,
                                        valid_until=valid_until)


def consume(booking_id="b1", starts_at=NOW + 3_600_000, member="m1"):
    return InstrumentConsumeRequested.new(correlation_id=booking_id, booking_id=booking_id, member_id=member,
                                          class_id="c1", gym_id="gym-a", class_starts_at=starts_at)


def release(booking_id="b1", instrument_id="pack-1"):
    return InstrumentReleaseRequested.new(correlation_id=booking_id, booking_id=booking_id, member_id="m1",
                                          instrument_id=instrument_id, reason="LATE_CONSUME")


def apply(state, *events, config=PLAIN, now=NOW):
    out = []
    for event in events:
        state, emitted = logic.on_event(state, event, now=now, config=config)
        out.extend(emitted)
    return state, out


def test_a_class_pack_is_consumed_credit_by_credit_then_exhausted():
    state, out = apply(None, grant_pack(credits=2), consume("b1"), consume("b2"), consume("b3"))
    assert [e.type_name for e in out] == ["InstrumentGranted", "InstrumentConsumed", "InstrumentConsumed",
                                          "InstrumentConsumeDenied"]
    assert [out[1].credits_remaining, out[2].credits_remaining] == [1, 0]
    assert out[3].reason.value == "CREDITS_EXHAUSTED" and out[3].correlation_id == "b3"
    assert logic.credits_left(state) == 0


def test_a_valid_unlimited_membership_is_used_before_a_pack():
    state, out = apply(None, grant_pack(), grant_unlimited(), consume("b1"))
    assert (out[-1].instrument_id, out[-1].instrument_kind.value, out[-1].credits_remaining) == \
        ("unl-1", "UNLIMITED", None)
    assert logic.credits_left(state) == 2


def test_an_expired_membership_is_denied_and_a_pack_takes_over_when_there_is_one():
    expired = grant_unlimited(valid_until=NOW - 1)
    _, out = apply(None, expired, consume("b1"))
    assert out[-1].reason.value == "MEMBERSHIP_EXPIRED"
    _, out = apply(None, expired, grant_pack(), consume("b1"))
    assert out[-1].instrument_id == "pack-1"
    _, out = apply(None, grant_unlimited(valid_from=NOW + 2 * DAY, valid_until=NOW + 3 * DAY), consume("b1"))
    assert out[-1].reason.value == "MEMBERSHIP_EXPIRED", "not valid yet at class start"


def test_a_member_without_instruments_has_no_entitlement():
    state, out = apply(None, consume("b1", member="nobody"))
    assert out[0].reason.value == "NO_ENTITLEMENT" and state["bookings"]["b1"]["outcome"] == logic.DENIED


def test_a_repeated_consume_for_the_same_booking_never_takes_a_second_credit():
    request = consume("b1")
    copy = request.model_copy(update={"event_id": "redelivered-under-another-id"})
    state, out = apply(None, grant_pack(credits=3), request, copy, request)
    assert [e.type_name for e in out] == ["InstrumentGranted", "InstrumentConsumed"]
    assert logic.credits_left(state) == 2


def test_release_gives_the_credit_back_once():
    state, out = apply(None, grant_pack(credits=1), consume("b1"), release("b1"), release("b1"))
    assert [e.type_name for e in out] == ["InstrumentGranted", "InstrumentConsumed", "InstrumentReleased"]
    assert out[-1].credits_remaining == 1 and logic.credits_left(state) == 1


def test_release_of_nothing_consumed_changes_nothing():
    state, out = apply(None, grant_pack(credits=1), release("never-booked"))
    assert [e.type_name for e in out] == ["InstrumentGranted"] and logic.credits_left(state) == 1


def test_a_second_grant_of_the_same_instrument_is_ignored():
    state, out = apply(None, grant_pack(credits=1), grant_pack(credits=1))
    assert [e.type_name for e in out] == ["InstrumentGranted"] and logic.credits_left(state) == 1


def test_a_delayed_reply_is_held_in_state_and_released_by_a_tick():
    delaying = EntitlementConfig(delay_share=1.0, delay_ms=800)
    state, out = apply(None, grant_pack(), consume("b1"), config=delaying)
    assert [e.type_name for e in out] == ["InstrumentGranted"]
    assert logic.credits_left(state) == 1, "the credit is consumed now; only the reply waits"
    early = ClockTicked.new(correlation_id="clock", now=NOW + 799, component="entitlement")
    state, out = apply(state, early, config=delaying)
    assert out == [] and logic.has_due(state, NOW + 800)
    due = ClockTicked.new(correlation_id="clock", now=NOW + 800, component="entitlement")
    state, out = apply(state, due, config=delaying)
    assert [(e.type_name, e.booking_id, e.correlation_id) for e in out] == [("InstrumentConsumed", "b1", "b1")]
    assert state["delayed"] == []


def test_the_delayed_share_is_chosen_deterministically_by_booking_id():
    config = EntitlementConfig(delay_share=0.3, delay_ms=100)
    chosen = [config.delays(f"booking-{i}") for i in range(2000)]
    assert chosen == [config.delays(f"booking-{i}") for i in range(2000)]
    assert 0.25 < sum(chosen) / len(chosen) < 0.35
    assert not EntitlementConfig(delay_share=1.0, delay_ms=0).delays("b1")
