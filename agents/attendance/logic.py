"""Attendance's rules: a confirmed booking becomes a pending attendance; a check-in records it.

State, one JSON record per booking (keyed by booking_id)::

    {"booking_id", "member_id", "class_id", "gym_id", "home_gym_id", "status": "PENDING" | "RECORDED"}

A partner visit is a check-in at a gym other than the member's home gym; it starts the settlement
choreography (Attendance does not know who reacts).
"""

from __future__ import annotations

from opengym_streams.event import Ignored, Result, ignore, not_yet
from opengym.models import (AttendancePending, AttendanceRecorded, CheckInRejected, CheckInRejection,
                            CheckInRequested, ReservationConfirmed)

PENDING = "PENDING"
RECORDED = "RECORDED"


def on_confirmed(state: dict | None, event: ReservationConfirmed, now: int) -> Result | Ignored:
    if state is not None:
        return ignore("attendance pending or recorded before")
    pending = AttendancePending.new(caused_by=event, occurred_at=now, booking_id=event.booking_id,
                                    member_id=event.member_id, class_id=event.class_id, gym_id=event.gym_id,
                                    home_gym_id=event.home_gym_id)
    return {"booking_id": event.booking_id, "member_id": event.member_id, "class_id": event.class_id,
            "gym_id": event.gym_id, "home_gym_id": event.home_gym_id, "status": PENDING}, [pending]


def on_check_in(state: dict | None, event: CheckInRequested, now: int) -> Result:
    def reject(reason: CheckInRejection) -> Result:
        return state, [CheckInRejected.new(caused_by=event, occurred_at=now, booking_id=event.booking_id,
                                           member_id=event.member_id, reason=reason)]

    if state is None:  # a replay may read the check-in before the confirmation it follows
        return not_yet("no pending attendance", otherwise=reject(CheckInRejection.NO_PENDING_ATTENDANCE))
    if state["member_id"] != event.member_id:
        return reject(CheckInRejection.MEMBER_MISMATCH)
    if state["status"] == RECORDED:
        return reject(CheckInRejection.ALREADY_RECORDED)
    recorded = AttendanceRecorded.new(
        caused_by=event, occurred_at=now, booking_id=event.booking_id, member_id=event.member_id,
        class_id=state["class_id"], gym_id=state["gym_id"], home_gym_id=state["home_gym_id"],
        partner_visit=is_partner_visit(state["gym_id"], state["home_gym_id"]))
    return {**state, "status": RECORDED}, [recorded]


def is_partner_visit(gym_id: str | None, home_gym_id: str | None) -> bool:
    return gym_id is not None and home_gym_id is not None and gym_id != home_gym_id


HANDLERS = {"ReservationConfirmed": on_confirmed, "CheckInRequested": on_check_in}
