"""What keeps a replay after a crash from deciding otherwise than the first run (docs/notes/components.md,
"Replays that decided otherwise"): events read before the state they need are parked, not dropped, and a
decision a clock tick makes is durable before it is announced."""

from __future__ import annotations

import opengym.agents.attendance as attendance
import opengym.agents.platform_billing as platform_billing
import opengym.agents.reservation as reservation
from opengym import topics
from opengym.models import (AttendanceRecorded, BookClassRequested, CheckInRequested, InstrumentConsumed,
                            PaymentSettled, ReservationConfirmed, ScheduleClassRequested, SeatHeld)
from opengym_streams.component import OUTBOX, PARKED
from opengym_streams.runtime import Processor
from opengym_streams.testing import T0, Scenario


def schedule(class_id="c1"):
    return ScheduleClassRequested.new(correlation_id=class_id, class_id=class_id, gym_id="gym-a", capacity=5,
                                      starts_at=T0 + 3_600_000, occurred_at=T0)


def book(booking_id="b1"):
    return BookClassRequested.new(correlation_id=booking_id, booking_id=booking_id, member_id="m1", class_id="c1",
                                  occurred_at=T0)


def replies(request: BookClassRequested):
    """The seat keeper's and Entitlement's answers, as the first run published them."""
    with Scenario(reservation.build(), now=T0) as first:
        first.given(schedule())
        hold = first.when(request)[0].event
        held = first.when(SeatHeld.new(caused_by=hold, booking_id=request.booking_id, class_id="c1",
                                       gym_id="gym-a", starts_at=T0 + 3_600_000, occurred_at=T0 + 5))
        ask = held[0].event
        consumed = InstrumentConsumed.new(caused_by=ask, booking_id=request.booking_id, member_id="m1",
                                          instrument_id="p1", instrument_kind="CLASS_PACK", home_gym_id="gym-b",
                                          credits_remaining=3, occurred_at=T0 + 10)
        confirmed = first.when(consumed)
        first.expect(("opengym.reservation.events", "ReservationConfirmed"), outputs=confirmed)
        return hold, held, ask, consumed, confirmed[0].event


def test_replies_read_before_their_booking_are_kept_and_the_replay_confirms_what_the_first_run_did():
    request = book()
    hold, _, _, consumed, confirmed = replies(request)
    seat = SeatHeld.new(caused_by=hold, booking_id="b1", class_id="c1", gym_id="gym-a", starts_at=T0 + 3_600_000,
                        occurred_at=T0 + 5)
    with Scenario(reservation.build(), now=T0 + 60_000, behind=True) as replay:
        replay.given(schedule())
        replay.when(consumed)  # both replies come before the request: their topics drained first
        replay.expect_nothing()
        replay.when(seat, on=topics.RESERVATION_SEAT_REPLIES)
        replay.expect_nothing()
        record = replay._tables["bookings"]["b1"]
        assert [p[0]["type"] for p in record[PARKED]] == ["InstrumentConsumed", "SeatHeld"]
        out = replay.when(request)
        replay.expect(("opengym.reservation.seats", "SeatHoldRequested"),
                      ("opengym.reservation.events", "ReservationConfirmed"), outputs=out)
        assert out[1].event.event_id == confirmed.event_id, "the same terminal event as the first run's"
        assert PARKED not in replay._tables["bookings"]["b1"]
        replay.behind = False
        replay.when_time_passes(60_000)
        replay.expect_nothing()  # not timed out: it is confirmed


def test_a_reply_for_no_booking_is_ignored_once_nothing_unread_could_start_one():
    _, _, _, consumed, _ = replies(book())
    with Scenario(reservation.build(), now=T0) as caught_up:
        caught_up.when(consumed)
        caught_up.expect_nothing()
        assert caught_up._tables["bookings"].get("b1") is None, "nothing is kept for it"


def test_a_check_in_read_before_its_confirmation_waits_for_it_and_is_recorded():
    confirmed = ReservationConfirmed.new(correlation_id="b2", booking_id="b2", member_id="m1", class_id="c1",
                                         gym_id="gym-a", home_gym_id="gym-b", occurred_at=T0)
    check_in = CheckInRequested.new(correlation_id="b2", booking_id="b2", member_id="m1", occurred_at=T0 + 100)
    with Scenario(attendance.build(), now=T0, behind=True) as replay:
        replay.when(check_in)
        replay.expect_nothing()
        out = replay.when(confirmed)
        assert [p.type for p in out] == ["AttendancePending", "AttendanceRecorded"]
    with Scenario(attendance.build(), now=T0) as caught_up:
        out = caught_up.when(check_in)
        assert [(p.type, p.event.reason.value) for p in out] == [("CheckInRejected", "NO_PENDING_ATTENDANCE")]


def test_a_payment_read_before_the_visit_that_obliges_it_settles_it_when_the_visit_comes():
    visit = AttendanceRecorded.new(correlation_id="b3", booking_id="b3", member_id="m1", class_id="c1",
                                   gym_id="gym-a", home_gym_id="gym-b", partner_visit=True, occurred_at=T0)
    paid = PaymentSettled.new(correlation_id="b3", settlement_id="settlement-b3", payment_id="pay-1",
                              amount_cents=1200, occurred_at=T0 + 50)
    with Scenario(platform_billing.build(), now=T0, behind=True) as replay:
        replay.when(paid)
        replay.expect_nothing()
        out = replay.when(visit)
        assert [p.type for p in out] == ["SettlementObligationCalculated", "SettlementConfirmed"]
        again = replay.when(paid)
        assert again == [], "the unparked payment is remembered as handled"


def timed_out(scenario: Scenario, request: BookClassRequested) -> None:
    scenario.given(schedule())
    hold = scenario.when(request)[0].event
    scenario.when(SeatHeld.new(caused_by=hold, booking_id=request.booking_id, class_id="c1", gym_id="gym-a",
                               starts_at=T0 + 3_600_000, occurred_at=T0))


def test_a_tick_decision_is_durable_with_its_events_before_any_of_them_is_announced(monkeypatch):
    monkeypatch.setenv("OPENGYM_BOOKING_TIMEOUT_MS", "5000")
    persisted = []

    async def persist_now(self, table, keys):
        persisted.append(({key: table[key] for key in keys}, len(scenario.published)))

    monkeypatch.setattr(Processor, "persist_now", persist_now)
    with Scenario(reservation.build(), now=T0) as scenario:
        timed_out(scenario, book("b4"))
        before = len(scenario.published)
        out = scenario.when_time_passes(10_000)
        assert [p.type for p in out] == ["ReservationRejected", "SeatReleaseRequested"]
        [(records, published_then)] = persisted
        assert published_then == before, "nothing of the decision was announced before it was durable"
        assert [e["type"] for e in records["b4"][OUTBOX]] == ["ReservationRejected", "SeatReleaseRequested"]
        assert records["b4"][OUTBOX][0]["event_id"] == out[0].event.event_id
        assert OUTBOX not in scenario._tables["bookings"]["b4"], "cleared once announced"


def test_a_decision_recovered_with_its_outbox_is_announced_again_before_anything_else():
    with Scenario(reservation.build(), now=T0) as scenario:
        timed_out(scenario, book("b5"))
        rejected = scenario.when_time_passes(70_000)
        table = scenario._tables["bookings"]
        # What the changelog held when the worker died between the durable write and the announcement.
        table["b5"] = {**table["b5"], OUTBOX: [p.event.to_json_dict() for p in rejected]}
        again = scenario.when_time_passes(1000)
        assert [(p.type, p.event.event_id) for p in again] == [(p.type, p.event.event_id) for p in rejected]
        assert OUTBOX not in table["b5"]
        assert scenario.when_time_passes(1000) == []


def test_a_parked_event_redelivered_with_other_content_is_a_conflict():
    _, _, _, consumed, _ = replies(book())
    forged = consumed.model_copy(update={"credits_remaining": 99})
    with Scenario(reservation.build(), now=T0, behind=True) as replay:
        replay.when(consumed)
        replay.expect_nothing()
        out = replay.when(forged)
        assert [(p.type, p.event.error_kind) for p in out] == [("DeadLetter", "DUPLICATE_CONFLICT")]
        assert replay.when(consumed) == [], "the same content again: a duplicate"


def test_progress_says_replaying_only_until_the_backlog_at_assignment_is_read():
    from types import SimpleNamespace

    from opengym_streams.progress import Progress

    view = {("t", 0): (10, None), ("t", 1): (0, None)}
    progress = Progress(lambda: dict(view), view_ttl_s=0)
    assert progress.replaying(), "ten records were there when it started"
    for offset in range(10):
        progress.handled(SimpleNamespace(topic="t", partition=0, offset=offset), T0 + offset)
    view[("t", 0)] = (25, None)  # fifteen more arrived meanwhile: not part of the backlog it started with
    assert not progress.replaying()
    del view[("t", 0)]
    assert not progress.replaying()
    view[("t", 0)] = (40, None)  # given back after a rebalance: a backlog of its own again
    assert progress.replaying()


def test_a_partition_that_keeps_judging_back_is_named_once_it_has_for_long(monkeypatch, caplog):
    import logging
    from types import SimpleNamespace

    from opengym_streams import progress as progress_module
    from opengym_streams.progress import Progress

    clock = [100.0]
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: clock[0])
    view = {("t", 0): (10, None), ("t", 1): (3, None)}
    progress = Progress(lambda: dict(view), view_ttl_s=0)
    for offset in range(3):
        progress.handled(SimpleNamespace(topic="t", partition=1, offset=offset), T0 + offset)
    progress.handled(SimpleNamespace(topic="t", partition=0, offset=4), T0 + 50)
    with caplog.at_level(logging.INFO, logger="opengym.progress"):
        assert progress.judge_until(T0 + 1000) == T0 + 50, "t[0] has unread records after its fact at T0+50"
        clock[0] += progress_module.HELD_NOTICE_S - 1
        progress.judge_until(T0 + 2000)
        assert not caplog.records, "a backlog draining holds judging back for a while: nothing to say yet"
        clock[0] += 1
        progress.judge_until(T0 + 3000)
        progress.judge_until(T0 + 4000)
    assert [r.getMessage() for r in caplog.records] == [
        "judging deadlines held back for 30 s: t[0] has unread records (high watermark 10, read up to 5); "
        "nothing past its last fact read is judged until it is read"]
    progress.handled(SimpleNamespace(topic="t", partition=0, offset=9), T0 + 60)
    assert progress.judge_until(T0 + 5000) == T0 + 5000, "caught up: judged at the tick's time"
