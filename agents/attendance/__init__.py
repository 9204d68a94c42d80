"""Attendance: listens to ReservationConfirmed and CheckInRequested; emits AttendancePending, then
AttendanceRecorded (with partner_visit) or CheckInRejected.

Both inputs are keyed by booking_id, so one table keyed by booking_id serves both.
Run: ``opengym worker attendance`` or ``faust -A agents.attendance worker -l info``.
"""

from __future__ import annotations

from opengym import topics
from opengym.agents.attendance import logic
from opengym_streams.component import Agent, Component, labelled, module_app
from opengym_streams.settings import Settings


def build(settings: Settings | None = None) -> Component:
    from opengym.agents.system import SYSTEM

    return Component(SYSTEM.component("attendance"), topics=topics.CATALOG, settings=settings, agents=(
        Agent("attend", reads=(topics.RESERVATION_EVENTS, topics.ATTENDANCE_COMMANDS), table="attendances",
              handlers=logic.HANDLERS,
              outcomes={"AttendancePending": "pending", "CheckInRejected": labelled("check_in_rejected", "reason"),
                        "AttendanceRecorded": lambda e: "recorded:partner" if e.partner_visit else "recorded:home"}),
    ))


__getattr__ = module_app(build)
