"""Reservation: listens to booking and schedule commands, seat replies and Entitlement's replies; emits
ClassScheduled and BookingOrchestration's terminal ReservationConfirmed | ReservationRejected.

- ``orchestrate`` (bookings, keyed by booking_id) runs the step table in :mod:`agents.reservation.booking`
  and forwards ``ScheduleClassRequested`` to the seat keeper unchanged.
- ``keep_seats`` (classes, keyed by class_id) reads ``opengym.reservation.seats``: see
  :mod:`agents.reservation.seats`.

Run: ``opengym worker reservation`` or ``faust -A agents.reservation worker -l info``.
"""

from __future__ import annotations

from opengym import topics
from opengym.agents.reservation import booking, seats
from opengym_streams.component import Agent, Component, module_app
from opengym_streams.settings import Settings


def build(settings: Settings | None = None) -> Component:
    from opengym.agents.system import SYSTEM

    return Component(SYSTEM.component("reservation"), topics=topics.CATALOG, settings=settings,
                     clock=topics.RESERVATION_COMMANDS, agents=(
        Agent.orchestrating(booking.orchestration(), name="orchestrate", table="bookings",
                            reads=(topics.RESERVATION_COMMANDS, topics.RESERVATION_SEAT_REPLIES,
                                   topics.ENTITLEMENT_EVENTS),
                            forward={"ScheduleClassRequested": topics.RESERVATION_SEATS}),
        Agent("keep_seats", reads=(topics.RESERVATION_SEATS,), table="classes", handlers=seats.HANDLERS, reanswer=True),
    ))


__getattr__ = module_app(build)
