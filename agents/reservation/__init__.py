"""Reservation: listens to booking and schedule commands, seat replies and Entitlement's replies; emits
ClassScheduled and BookingOrchestration's terminal ReservationConfirmed | ReservationRejected.

Two agents, each with state keyed like the topic it reads:

- ``orchestrate`` (bookings, keyed by booking_id) reads ``opengym.reservation.commands``,
  ``opengym.reservation.seat-replies`` and ``opengym.entitlement.events``, runs the step table in
  :mod:`agents.reservation.orchestration`, and handles the clock ticks that expire deadlines. It
  forwards ``ScheduleClassRequested`` to the seat keeper unchanged.
- ``keep_seats`` (classes, keyed by class_id) reads ``opengym.reservation.seats``: see
  :mod:`agents.reservation.seats`.

Run: ``opengym worker reservation`` or ``faust -A agents.reservation worker -l info``.
"""

from __future__ import annotations

import topics
from agents.reservation import orchestration, seats
from streams.app import Runtime, all_of, correlates_by, non_empty, positive

rt = Runtime("reservation", clock=topics.RESERVATION_COMMANDS)
app = rt.app
config = orchestration.BookingConfig.from_env()

bookings = rt.table("bookings", wake=lambda state: orchestration.wake_at(state, config))
"""Every booking ever made stays (late replies are deduped against it); a tick visits only the ones
still waiting for a seat or a consume reply (its wake index)."""
classes = rt.table("classes")


@rt.agent(topics.RESERVATION_COMMANDS, topics.RESERVATION_SEAT_REPLIES, topics.ENTITLEMENT_EVENTS, accepts={
    "BookClassRequested": all_of(correlates_by("booking_id"), non_empty("member_id", "class_id")),
    "ScheduleClassRequested": all_of(correlates_by("class_id"), non_empty("gym_id"), positive("capacity")),
    "SeatHeld": correlates_by("booking_id"),
    "SeatRefused": correlates_by("booking_id"),
    "InstrumentConsumed": correlates_by("booking_id"),
    "InstrumentConsumeDenied": correlates_by("booking_id"),
    "InstrumentGranted": None,
    "InstrumentReleased": None,
})
async def orchestrate(event, message):
    kind = event.type_name
    if kind == "ScheduleClassRequested":
        await rt.forward(message, event, topics.RESERVATION_SEATS)
    elif kind == "ClockTicked":
        for key, _ in rt.due(bookings, message.partition, event.now):
            for out in await rt.step(bookings, key, event, orchestration.on_event, now=event.now, config=config):
                _count(out)
    elif kind in ("InstrumentGranted", "InstrumentReleased"):
        return  # Entitlement's other facts share the topic; the orchestration needs none of them
    else:
        phase = (bookings.get(event.correlation_id) or {}).get("phase")
        emitted = await rt.step(bookings, event.correlation_id, event, orchestration.on_event, now=rt.now(),
                                config=config)
        for out in emitted:
            _count(out)
        if (phase, kind) not in orchestration.TRANSITIONS:
            # Ignored on purpose (see TRANSITIONS), but counted: a reply for a booking we never started
            # or one that arrives after the end shows up on the dashboard, not nowhere.
            rt.outcome(f"ignored:{kind}")


@rt.agent(topics.RESERVATION_SEATS, accepts={
    "ScheduleClassRequested": positive("capacity"),
    "SeatHoldRequested": non_empty("booking_id", "class_id"),
    "SeatReleaseRequested": non_empty("booking_id", "class_id"),
})
async def keep_seats(event, message):
    await rt.step(classes, event.class_id, event, seats.on_event, now=rt.now())


def _count(out) -> None:
    kind = out.type_name
    if kind == "ReservationConfirmed":
        rt.outcome("confirmed")
    elif kind == "ReservationRejected":
        rt.outcome(f"rejected:{getattr(out.reason, 'value', out.reason)}")
    elif kind == "InstrumentReleaseRequested":
        rt.outcome("late_consume_released")
