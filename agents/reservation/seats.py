"""The seat keeper: one class's capacity, changed only by events keyed by its class_id.

Bookings are keyed by booking_id and spread over every partition, so no booking partition can count
a class's seats. Reservation therefore repartitions seat holds and releases by class_id onto
``opengym.reservation.seats``; all of one class's seats are decided by one agent, one event at a
time, and the class can never be overbooked. State, one JSON record per class::

    {"class_id", "gym_id", "capacity", "starts_at", "held": [booking ids], "released": [booking ids]}
"""

from __future__ import annotations

from streams.event import Event, Result
from streams.models import (ClassScheduled, ScheduleClassRequested, SeatHeld, SeatHoldRequested, SeatRefusal,
                            SeatRefused, SeatReleaseRequested)


def schedule(state: dict | None, event: ScheduleClassRequested, now: int) -> Result:
    klass = {**(state or {"held": [], "released": []}), "class_id": event.class_id, "gym_id": event.gym_id,
             "capacity": event.capacity, "starts_at": event.starts_at}
    scheduled = ClassScheduled.new(caused_by=event, occurred_at=now, class_id=event.class_id,
                                   gym_id=event.gym_id, capacity=event.capacity, starts_at=event.starts_at)
    return klass, [scheduled]


def hold(state: dict | None, event: SeatHoldRequested, now: int) -> Result:
    if state is None or "capacity" not in state:
        return state, [SeatRefused.new(caused_by=event, occurred_at=now, booking_id=event.booking_id,
                                       class_id=event.class_id, reason=SeatRefusal.UNKNOWN_CLASS)]
    if event.booking_id in state["released"]:
        return state, []  # a redelivered hold for a booking that already gave its seat back
    if event.booking_id in state["held"]:
        return state, [_held(state, event, now)]  # same derived event id: the orchestration dedupes it
    if len(state["held"]) >= state["capacity"]:
        return state, [SeatRefused.new(caused_by=event, occurred_at=now, booking_id=event.booking_id,
                                       class_id=event.class_id, reason=SeatRefusal.CLASS_FULL)]
    return {**state, "held": [*state["held"], event.booking_id]}, [_held(state, event, now)]


def _held(state: dict, event: SeatHoldRequested, now: int) -> SeatHeld:
    return SeatHeld.new(caused_by=event, occurred_at=now, booking_id=event.booking_id, class_id=state["class_id"],
                        gym_id=state["gym_id"], starts_at=state["starts_at"])


def release(state: dict | None, event: SeatReleaseRequested, now: int) -> Result:
    if state is None or event.booking_id in state["released"]:
        return state, []
    return ({**state, "held": [b for b in state["held"] if b != event.booking_id],
             "released": [*state["released"], event.booking_id]}, [])


HANDLERS = {"ScheduleClassRequested": schedule, "SeatHoldRequested": hold, "SeatReleaseRequested": release}


def on_event(state: dict | None, event: Event, *, now: int) -> Result:
    return HANDLERS[event.type_name](state, event, now)


def seats_taken(state: dict | None) -> int:
    return len(state["held"]) if state else 0
