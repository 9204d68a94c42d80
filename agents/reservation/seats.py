"""The seat keeper: one class's capacity, changed only by events keyed by its class_id.

Bookings are keyed by booking_id and spread over every partition, so no booking partition can count
a class's seats. Reservation therefore repartitions seat holds and releases by class_id onto
``opengym.reservation.seats``; all of one class's seats are decided by one agent, one event at a
time, and the class can never be overbooked. State, one JSON record per class::

    {"class_id", "gym_id", "capacity", "starts_at", "held": [booking ids], "released": [booking ids],
     "answers": {booking_id: [the answer's event id, its cause, its time, refusal reason or None]}}

A hold is answered again with the very answer it got, however often it is asked: a booking that
lost its state in a crash (another worker may own its partition) asks again and must hear the same
thing, not silence.
"""

from __future__ import annotations

from opengym_streams.event import Ignored, Result, ignore
from opengym.models import (ClassScheduled, ScheduleClassRequested, SeatHeld, SeatHoldRequested, SeatRefusal,
                            SeatRefused, SeatReleaseRequested)


def _new_class() -> dict:
    return {"held": [], "released": [], "answers": {}}


def schedule(state: dict | None, event: ScheduleClassRequested, now: int) -> Result:
    klass = {**(state or _new_class()), "class_id": event.class_id, "gym_id": event.gym_id,
             "capacity": event.capacity, "starts_at": event.starts_at}
    scheduled = ClassScheduled.new(caused_by=event, occurred_at=now, class_id=event.class_id,
                                   gym_id=event.gym_id, capacity=event.capacity, starts_at=event.starts_at)
    return klass, [scheduled]


def hold(state: dict | None, event: SeatHoldRequested, now: int) -> Result | Ignored:
    klass = state or _new_class()
    if event.booking_id in klass["released"]:
        return ignore("the booking gave its seat back")
    said = klass.get("answers", {}).get(event.booking_id)
    if said is not None:
        return klass, [_answer_again(klass, event, said)]
    if "capacity" not in klass:
        answer: SeatHeld | SeatRefused = SeatRefused.new(caused_by=event, occurred_at=now, booking_id=event.booking_id,
                                                         class_id=event.class_id, reason=SeatRefusal.UNKNOWN_CLASS)
    elif event.booking_id in klass["held"] or len(klass["held"]) < klass["capacity"]:
        answer = SeatHeld.new(caused_by=event, occurred_at=now, booking_id=event.booking_id,
                              class_id=klass["class_id"], gym_id=klass["gym_id"], starts_at=klass["starts_at"])
    else:
        answer = SeatRefused.new(caused_by=event, occurred_at=now, booking_id=event.booking_id,
                                 class_id=event.class_id, reason=SeatRefusal.CLASS_FULL)
    held = klass["held"]
    if isinstance(answer, SeatHeld) and event.booking_id not in held:
        held = [*held, event.booking_id]
    reason = getattr(getattr(answer, "reason", None), "value", None)
    answers = {**klass.get("answers", {}), event.booking_id: [answer.event_id, answer.causation_id, answer.occurred_at,
                                                               reason]}
    return {**klass, "held": held, "answers": answers}, [answer]


def _answer_again(klass: dict, event: SeatHoldRequested, said: list) -> SeatHeld | SeatRefused:
    event_id, cause, at, reason = said
    envelope = dict(event_id=event_id, correlation_id=event.booking_id, causation_id=cause, occurred_at=at,
                    booking_id=event.booking_id)
    if reason is not None:
        return SeatRefused(**envelope, class_id=event.class_id, reason=reason)
    return SeatHeld(**envelope, class_id=klass["class_id"], gym_id=klass["gym_id"], starts_at=klass["starts_at"])


def release(state: dict | None, event: SeatReleaseRequested, now: int) -> Result | Ignored:
    if state is None or event.booking_id not in state["held"]:
        return ignore("no seat held for this booking")
    return ({**state, "held": [b for b in state["held"] if b != event.booking_id],
             "released": [*state["released"], event.booking_id]}, [])


HANDLERS = {"ScheduleClassRequested": schedule, "SeatHoldRequested": hold, "SeatReleaseRequested": release}


def seats_taken(state: dict | None) -> int:
    return len(state["held"]) if state else 0
