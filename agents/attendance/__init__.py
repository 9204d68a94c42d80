"""Attendance: listens to ReservationConfirmed and CheckInRequested; emits AttendancePending, then
AttendanceRecorded (with partner_visit) or CheckInRejected.

Both inputs are keyed by booking_id, so one table keyed by booking_id serves both.
Run: ``opengym worker attendance`` or ``faust -A agents.attendance worker -l info``.
"""

from __future__ import annotations

import topics
from agents.attendance import logic
from streams.app import Runtime, all_of, correlates_by, non_empty

rt = Runtime("attendance")
app = rt.app

attendances = rt.table("attendances")


@rt.agent(topics.RESERVATION_EVENTS, topics.ATTENDANCE_COMMANDS, accepts={
    "ReservationConfirmed": correlates_by("booking_id"), "ReservationRejected": None, "ClassScheduled": None,
    "CheckInRequested": all_of(correlates_by("booking_id"), non_empty("member_id")),
    "ClockTicked": None,
})
async def attend(event, message):
    if event.type_name not in logic.HANDLERS:
        return  # rejections, schedules and other components' clock ticks change no attendance
    for out in await rt.step(attendances, event.booking_id, event, logic.on_event, now=rt.now()):
        if out.type_name == "AttendanceRecorded":
            rt.outcome("recorded:partner" if out.partner_visit else "recorded:home")
        elif out.type_name == "CheckInRejected":
            rt.outcome(f"check_in_rejected:{getattr(out.reason, 'value', out.reason)}")
        else:
            rt.outcome("pending")
