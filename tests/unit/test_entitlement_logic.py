"""Entitlement as a responder: grants, consume and release, idempotent per booking, answered again with
what it said the first time (Entitlement's own runtime code, no Kafka)."""

from __future__ import annotations

import pytest

import opengym.agents.entitlement as entitlement
from opengym import topics
from opengym.agents.entitlement import logic
from opengym.agents.entitlement.logic import EntitlementConfig
from opengym.models import InstrumentConsumeRequested, InstrumentGrantRequested, InstrumentReleaseRequested
from opengym_streams.testing import Scenario

NOW = 1_000_000
DAY = 86_400_000
EVENTS = topics.ENTITLEMENT_EVENTS.name


@pytest.fixture
def responder():
    with Scenario(entitlement.build(), now=NOW, follow=True) as scenario:
        yield scenario


def grant_pack(instrument_id="pack-1", credits=2, member="m1"):
    return InstrumentGrantRequested.new(correlation_id=member, instrument_id=instrument_id, member_id=member,
                                        home_gym_id="gym-b", kind="CLASS_PACK", credits=credits, occurred_at=NOW)


def grant_unlimited(instrument_id="unl-1", valid_from=None, valid_until=NOW + DAY, member="m1"):
    return InstrumentGrantRequested.new(correlation_id=member, instrument_id=instrument_id, member_id=member,
                                        home_gym_id="gym-b", kind="UNLIMITED", valid_from=valid_from,
                                        valid_until=valid_until, occurred_at=NOW)


def consume(booking_id="b1", starts_at=NOW + 3_600_000, member="m1"):
    return InstrumentConsumeRequested.new(correlation_id=booking_id, booking_id=booking_id, member_id=member,
                                          class_id="c1", gym_id="gym-a", class_starts_at=starts_at, occurred_at=NOW)


def release(booking_id="b1", instrument_id="pack-1"):
    return InstrumentReleaseRequested.new(correlation_id=booking_id, booking_id=booking_id, member_id="m1",
                                          instrument_id=instrument_id, reason="LATE_CONSUME", occurred_at=NOW)


def replies(scenario, *requests):
    """What Entitlement published on its events topic for these requests, in order."""
    out = []
    for request in requests:
        out += [p.event for p in scenario.when(request) if p.topic == EVENTS]
    return out


def credits(scenario, member="m1"):
    return logic.credits_left(scenario.state("members", member))


def test_a_class_pack_is_consumed_credit_by_credit_then_exhausted(responder):
    out = replies(responder, grant_pack(credits=2), consume("b1"), consume("b2"), consume("b3"))
    assert [e.type_name for e in out] == ["InstrumentGranted", "InstrumentConsumed", "InstrumentConsumed",
                                          "InstrumentConsumeDenied"]
    assert [out[1].credits_remaining, out[2].credits_remaining] == [1, 0]
    assert out[3].reason.value == "CREDITS_EXHAUSTED" and out[3].correlation_id == "b3"
    assert credits(responder) == 0


def test_a_valid_unlimited_membership_is_used_before_a_pack(responder):
    out = replies(responder, grant_pack(), grant_unlimited(), consume("b1"))
    assert (out[-1].instrument_id, out[-1].instrument_kind.value, out[-1].credits_remaining) == \
        ("unl-1", "UNLIMITED", None)
    assert credits(responder) == 2


def test_an_expired_membership_is_denied_and_a_pack_takes_over_when_there_is_one():
    expired = grant_unlimited(valid_until=NOW - 1)
    with Scenario(entitlement.build(), now=NOW, follow=True) as one:
        assert replies(one, expired, consume("b1"))[-1].reason.value == "MEMBERSHIP_EXPIRED"
    with Scenario(entitlement.build(), now=NOW, follow=True) as two:
        assert replies(two, expired, grant_pack(), consume("b1"))[-1].instrument_id == "pack-1"
    with Scenario(entitlement.build(), now=NOW, follow=True) as three:
        out = replies(three, grant_unlimited(valid_from=NOW + 2 * DAY, valid_until=NOW + 3 * DAY), consume("b1"))
        assert out[-1].reason.value == "MEMBERSHIP_EXPIRED", "not valid yet at class start"


def test_a_member_without_instruments_has_no_entitlement(responder):
    out = replies(responder, consume("b1", member="nobody"))
    assert out[0].reason.value == "NO_ENTITLEMENT"
    assert responder.state("members", "nobody")["bookings"]["b1"]["outcome"] == logic.DENIED


def test_a_repeated_consume_never_takes_a_second_credit_and_gets_the_first_answer_again(responder):
    request = consume("b1")
    copy = request.model_copy(update={"event_id": "asked-again-under-another-id"})
    out = replies(responder, grant_pack(credits=3), request, copy, request)
    assert [e.type_name for e in out] == ["InstrumentGranted"] + ["InstrumentConsumed"] * 3
    assert out[1] == out[2] == out[3], "the same event: same id, same content"
    assert credits(responder) == 2


def test_release_gives_the_credit_back_once_and_says_so_again(responder):
    out = replies(responder, grant_pack(credits=1), consume("b1"), release("b1"), release("b1"))
    assert [e.type_name for e in out] == ["InstrumentGranted", "InstrumentConsumed", "InstrumentReleased",
                                          "InstrumentReleased"]
    assert out[-1] == out[-2] and out[-1].credits_remaining == 1 and credits(responder) == 1


def test_release_of_nothing_consumed_changes_nothing(responder):
    out = replies(responder, grant_pack(credits=1), release("never-booked"))
    assert [e.type_name for e in out] == ["InstrumentGranted"] and credits(responder) == 1


def test_a_second_grant_of_the_same_instrument_is_ignored(responder):
    out = replies(responder, grant_pack(credits=1), grant_pack(credits=1))
    assert [e.type_name for e in out] == ["InstrumentGranted"] and credits(responder) == 1


def test_a_delayed_reply_is_held_in_state_and_released_by_a_tick(monkeypatch):
    monkeypatch.setenv("OPENGYM_ENTITLEMENT_DELAY_SHARE", "1.0")
    monkeypatch.setenv("OPENGYM_ENTITLEMENT_DELAY_MS", "800")
    with Scenario(entitlement.build(), now=NOW, follow=True) as delaying:
        out = replies(delaying, grant_pack(), consume("b1"))
        assert [e.type_name for e in out] == ["InstrumentGranted"]
        assert credits(delaying) == 1, "the credit is consumed now; only the reply waits"
        assert replies(delaying, consume("b1")) == [], "asked again while held back: the reply is still coming"
        delaying.when_time_passes(799)
        delaying.expect_nothing()
        assert logic.wake_at(delaying.state("members", "m1")) == NOW + 800
        out = delaying.when_time_passes(1)
        assert [(p.type, p.event.booking_id, p.event.correlation_id) for p in out] == [("InstrumentConsumed", "b1", "b1")]
        assert delaying.state("members", "m1")["delayed"] == []
        assert replies(delaying, consume("b1")) == [out[0].event], "asked again after: the same answer"


def test_the_delayed_share_is_chosen_deterministically_by_booking_id():
    config = EntitlementConfig(delay_share=0.3, delay_ms=100)
    chosen = [config.delays(f"booking-{i}") for i in range(2000)]
    assert chosen == [config.delays(f"booking-{i}") for i in range(2000)]
    assert 0.25 < sum(chosen) / len(chosen) < 0.35
    assert not EntitlementConfig(delay_share=1.0, delay_ms=0).delays("b1")
